/**
 * vmstate snapshot (docs/vmstate.md): the VMM writes its part of the bundle
 * into a staging directory beside outDir; we add the root image and
 * meta.json and rename the whole into place. Until the VMM has answered,
 * any failure leaves the VM running and removes every staged byte.
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import {
  ControlTimeoutError,
  ErrorCode,
  PhaseTimer,
  SnapshotError,
  commitBundle,
  removeStaging,
  requestControl,
  stagingPathFor,
  writeMeta,
  type EngineSnapshotOptions,
  type SnapshotMeta,
  type SnapshotResult,
  type SnapshotSource,
} from "@stasis/core";
import { ROOTFS_FILE, STATE_FILE } from "./bundle-files.js";
import { linkOrCopy } from "./copy-file.js";

export const ENGINE_NAME = "vmstate";

/** How long a VMM whose control connection broke gets to finish exiting (freeing a large guest's RAM takes a while). */
const VMM_DEATH_GRACE_MS = 5_000;

function dumpFailed(message: string, cause?: unknown): SnapshotError {
  return new SnapshotError(ErrorCode.SNAPSHOT_DUMP_FAILED, message, cause === undefined ? {} : { cause });
}

/** The VMM's reply timings, as numbers only. */
function timingsOf(reply: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  const t = reply.timings;
  if (t && typeof t === "object") {
    for (const [k, v] of Object.entries(t)) if (typeof v === "number" && Number.isFinite(v)) out[k] = v;
  }
  return out;
}

/** The VMM's file list as bundle-relative names (it may report absolute paths inside the staging dir). */
function filesOf(reply: Record<string, unknown>, staging: string): string[] {
  if (!Array.isArray(reply.files)) return [];
  return reply.files
    .filter((f): f is string => typeof f === "string")
    .map((f) => (path.isAbsolute(f) ? path.relative(staging, f) : f))
    .filter((f) => f !== "" && !f.startsWith("..") && !path.isAbsolute(f));
}

async function askVmm(vm: SnapshotSource, staging: string, opts: EngineSnapshotOptions): Promise<Record<string, unknown>> {
  if (!vm.controlPath) {
    throw dumpFailed(`VM ${vm.pid} has no control socket recorded, so its VMM cannot be asked for a snapshot (was it started by an older stasis?)`);
  }
  let reply: Record<string, unknown>;
  try {
    reply = await requestControl(vm.controlPath, { cmd: "snapshot", dir: staging, leaveRunning: opts.leaveRunning }, opts.timeoutMs);
  } catch (err) {
    if (err instanceof ControlTimeoutError) {
      // A VMM that does not finish its dump in time may be wedged with the vCPUs parked: end it (B103).
      await vm.kill();
      throw new SnapshotError(
        ErrorCode.SNAPSHOT_TIMEOUT,
        `VM ${vm.pid} did not finish its snapshot within ${opts.timeoutMs} ms and was killed; raise timeoutMs for VMs with much memory`,
        { cause: err },
      );
    }
    // A broken connection usually means the VMM died mid-dump. Settle only
    // once it is gone and collected, so the caller never sees a dead VM that
    // is still listed; a VMM that is still running after the grace stays.
    const died = await vm.awaitGone(VMM_DEATH_GRACE_MS).then(
      () => true,
      () => false,
    );
    const state = died ? "its VMM exited during the dump and nothing was kept" : "the VM is still running";
    throw dumpFailed(`could not get a snapshot from VM ${vm.pid}: ${(err as Error).message}; ${state}`, err);
  }
  if (reply.ok !== true) {
    const why = typeof reply.error === "string" ? reply.error : "no reason given";
    throw dumpFailed(`the VMM of VM ${vm.pid} could not write the snapshot: ${why}; the VM is still running`);
  }
  if (!existsSync(path.join(staging, STATE_FILE))) {
    throw dumpFailed(`the VMM of VM ${vm.pid} reported a snapshot but ${path.join(staging, STATE_FILE)} is missing`);
  }
  return reply;
}

export async function snapshotVmstate(vm: SnapshotSource, opts: EngineSnapshotOptions): Promise<SnapshotResult> {
  const start = performance.now();
  const phases = new PhaseTimer("snapshot");
  const destructive = !opts.leaveRunning;
  const staging = stagingPathFor(opts.outDir);
  let vmmDone = false;
  let snappedAt = 0;
  let reply: Record<string, unknown>;
  try {
    const t0 = performance.now();
    reply = await askVmm(vm, staging, opts);
    snappedAt = Date.now();
    vmmDone = true;
    phases.record("vmm", performance.now() - t0);
    for (const [k, v] of Object.entries(timingsOf(reply))) phases.record(`vmm.${k.replace(/Ms$/, "")}`, v);

    const files = filesOf(reply, staging);
    let rootfs: string | undefined;
    let rootfsPath: string | undefined;
    if (vm.rootImg !== undefined && existsSync(vm.rootImg) && statSync(vm.rootImg).isFile()) {
      const how = phases.time("rootfs", () => linkOrCopy(vm.rootImg!, path.join(staging, ROOTFS_FILE), { copy: opts.scratch !== true }));
      if (how === "none") {
        rootfsPath = vm.rootImg;
      } else {
        rootfs = ROOTFS_FILE;
        files.push(ROOTFS_FILE);
      }
    }
    const e = vm.entry;
    const meta: SnapshotMeta = {
      engine: ENGINE_NAME,
      ...(vm.name !== undefined ? { sourceName: vm.name } : {}),
      ...(vm.imagePath !== undefined ? { sourceImage: vm.imagePath } : {}),
      snappedAt,
      createdAt: new Date(snappedAt).toISOString(),
      ...(e.memoryCeilingMib !== undefined ? { memoryMib: e.memoryCeilingMib } : {}),
      ...(e.cpus !== undefined ? { cpus: e.cpus } : {}),
      sourcePid: vm.pid,
      ...(e.forkedFrom !== undefined ? { forkedFrom: e.forkedFrom } : {}),
      ...(rootfs !== undefined ? { rootfs } : {}),
      ...(rootfsPath !== undefined ? { rootfsPath } : {}),
      files: [...new Set(files)],
    };
    phases.time("meta", () => writeMeta(staging, meta));
    phases.time("commit", () => commitBundle(staging, opts.outDir));
  } catch (err) {
    if (vmmDone && destructive) {
      // The VMM has exited after writing its part: the staged state is now the
      // only copy of the VM, so it is kept rather than thrown away.
      throw new SnapshotError(
        ErrorCode.SNAPSHOT_DUMP_FAILED,
        `the VM's state was written but the bundle could not be completed (${(err as Error).message}); the VM has exited and its state is kept in ${staging}`,
        { cause: err },
      );
    }
    removeStaging(staging);
    throw err;
  }

  if (destructive) {
    const left = Math.max(5_000, opts.timeoutMs - (performance.now() - start));
    const t0 = performance.now();
    try {
      await vm.awaitGone(left);
    } catch (err) {
      await vm.kill();
      throw new SnapshotError(
        ErrorCode.SNAPSHOT_TIMEOUT,
        `VM ${vm.pid} did not exit after its snapshot and was killed; the bundle ${opts.outDir} is complete and restorable`,
        { cause: err },
      );
    }
    phases.record("exit", performance.now() - t0);
  }
  opts.onLog?.(phases.event());
  const memoryBytes = typeof reply.memoryBytes === "number" ? reply.memoryBytes : undefined;
  return {
    engine: ENGINE_NAME,
    snapDir: opts.outDir,
    vmstatePath: path.join(opts.outDir, STATE_FILE),
    elapsedMs: Math.round(performance.now() - start),
    consoleLog: "",
    snappedAt,
    destructive,
    sourcePid: vm.pid,
    ...(vm.name !== undefined ? { sourceName: vm.name } : {}),
    ...(memoryBytes !== undefined ? { memoryBytes } : {}),
    timings: timingsOf(reply),
  };
}
