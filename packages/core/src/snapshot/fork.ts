/**
 * vm.fork(opts) (api.md §4.6), for any engine: snapshot with the source left
 * running, then restore that bundle as a sibling. Without outDir the bundle
 * is temporary and goes away with the fork (B123).
 */
import { accessSync, constants, mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { VmHandle } from "../boot/handle.js";
import { checkName } from "../registry/names.js";
import { DEFAULT_FREE_MEMORY_THRESHOLD, checkForkBackpressure } from "./backpressure.js";
import type { RestoreOptions, SnapshotSource } from "./engine.js";
import { restoreBundle } from "./restore.js";
import { bothLogs, snapshotVm, type SnapshotContext } from "./snapshot-vm.js";

export interface ForkOptions extends Omit<RestoreOptions, "snapDir"> {
  /** Keep the bundle here (restorable again). Default: a temporary bundle, deleted once the fork has exited. */
  outDir?: string;
  /** Let the fork inherit live TCP state (default false: its inherited connections are reset). */
  tcpKeep?: boolean;
  /** Refuse (FORK_MEMORY_BACKPRESSURE) when available memory < total × this. Default 0.01; ≤ 0 disables. */
  freeMemoryThreshold?: number;
  /** Injectable for tests: available host memory in bytes. */
  readFreeMemory?: () => Promise<number>;
}

/**
 * Where a fork's temporary bundle goes: STASIS_FORK_DIR, else /dev/shm
 * when it is there and writable (a memory file system: the source is
 * paused while its RAM is written, and writing to memory is several times
 * faster here than to a disk file system; the fork then maps those very
 * pages), else the temp dir.
 */
export function forkScratchRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STASIS_FORK_DIR) return env.STASIS_FORK_DIR;
  try {
    accessSync("/dev/shm", constants.W_OK);
    if (statSync("/dev/shm").isDirectory()) return "/dev/shm";
  } catch {
    // no usable /dev/shm
  }
  return os.tmpdir();
}

export async function forkVm(source: SnapshotSource, opts: ForkOptions = {}, ctx: SnapshotContext = {}): Promise<VmHandle> {
  // Everything the caller can get wrong is checked before the source is touched.
  if (opts.name !== undefined) checkName(opts.name);
  await checkForkBackpressure({
    threshold: opts.freeMemoryThreshold ?? DEFAULT_FREE_MEMORY_THRESHOLD,
    ...(opts.readFreeMemory ? { readFree: opts.readFreeMemory } : {}),
  });
  const { outDir, tcpKeep, freeMemoryThreshold: _t, readFreeMemory: _r, ...restoreOpts } = opts;
  const tempParent = outDir === undefined ? mkdtempSync(path.join(forkScratchRoot(), "stasis-fork-")) : undefined;
  const snapDir = outDir ?? path.join(tempParent!, "bundle");
  const engines = [...(opts.engines ?? []), ...(ctx.engines ?? [])];
  const onLog = bothLogs(opts.onLog, ctx.onLog);
  try {
    await snapshotVm(source, {
      outDir: snapDir,
      leaveRunning: true,
      tcpClose: tcpKeep !== true,
      engines,
      ...(tempParent ? { scratch: true } : {}),
      ...(onLog ? { onLog } : {}),
    });
    return await restoreBundle(
      {
        ...restoreOpts,
        snapDir,
        engines,
        // Forks are long-lived: no wait() deadline unless asked (api.md §4.6).
        timeoutMs: opts.timeoutMs ?? null,
        // A detached fork must outlive the process that forked it (B126).
        ...(opts.detached === true ? { pdeathsig: false } : {}),
      },
      { cleanupPaths: tempParent ? [tempParent] : [] },
    );
  } catch (err) {
    if (tempParent) rmSync(tempParent, { recursive: true, force: true });
    throw err;
  }
}
