/**
 * A warm boot: the cached snapshot of an idle guest of this exact shape is
 * restored by its engine, which then hands the guest this boot's workload
 * and identity instead of a plain thaw. The guest goes on from the point
 * where a cold boot would have handed it over.
 */
import { findEngine } from "../snapshot/engines.js";
import { readMeta } from "../snapshot/meta.js";
import type { PhaseTimer } from "../log/events.js";
import type { WarmHit } from "../warm/index.js";
import type { ResolvedBoot } from "./boot-cold.js";
import type { VmHandle } from "./handle.js";
import type { BootOptions } from "./options.js";

export async function bootWarm(entry: WarmHit, r: ResolvedBoot, opts: BootOptions, phases: PhaseTimer): Promise<VmHandle> {
  const t0 = performance.now();
  const meta = readMeta(entry.dir);
  const engine = findEngine(meta.engine ?? "vmstate", opts.engines);
  const handle = await engine.restore(
    { dir: entry.dir, meta },
    {
      image: r.image,
      ...(r.name !== undefined ? { name: r.name } : {}),
      cwd: r.vmmCwd,
      binary: r.binary,
      timeoutMs: r.timeoutMs,
      ...(opts.vmmEnv !== undefined ? { vmmEnv: opts.vmmEnv } : {}),
      ...(opts.detached !== undefined ? { detached: opts.detached } : {}),
      ...(opts.pdeathsig !== undefined ? { pdeathsig: opts.pdeathsig } : {}),
      ...(opts.onStdout ? { onStdout: opts.onStdout } : {}),
      ...(opts.onStderr ? { onStderr: opts.onStderr } : {}),
      ...(opts.onLog ? { onLog: opts.onLog } : {}),
      ...(opts.engines ? { engines: opts.engines } : {}),
      cleanupPaths: [],
      warm: { key: entry.key, workload: r.command, ...r.identity },
    },
  );
  phases.record("warm.restore", performance.now() - t0);
  return handle;
}
