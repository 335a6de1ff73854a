/**
 * A VM owned by this process: the VMM is our child, tied to us by its
 * parent-death signal, its stdio ours; registered while it runs.
 */
import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { createExecApi } from "../agent/index.js";
import { BootError, ErrorCode } from "../errors/index.js";
import { markRootfsImageClean } from "../image/rootfs-cache.js";
import { removeEntry, writeEntry, type RegistryEntry } from "../registry/entry.js";
import { releaseName } from "../registry/names.js";
import { trackVm } from "./cleanup.js";
import { VmProcessHandle, type VmHandle } from "./handle.js";
import { timedWaitReady } from "./launch-ready.js";
import { cleanupPathsOf, execLog, registerSpawned, type LaunchMode, type LaunchPlan } from "./launch-plan.js";
import { notReadyError } from "./launch-detached.js";

export async function launchForeground(plan: LaunchPlan, mode: LaunchMode): Promise<VmHandle> {
  const env = { ...plan.env };
  if (mode.pdeathsig !== false) env.STASIS_PDEATHSIG = "1";
  const child = plan.phases.time("spawn", () =>
    spawn(plan.binary, plan.args, { cwd: plan.cwd, env, stdio: ["pipe", "pipe", "pipe", "pipe"] }),
  );
  if (child.pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once("error", resolve));
    throw new BootError(ErrorCode.BOOT_VMM_MISSING, `could not start the VMM ${plan.binary}: ${err.message}`, { cause: err });
  }
  child.on("error", () => {});
  const pid = child.pid;
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let entry: RegistryEntry;
  try {
    entry = registerSpawned(plan, pid);
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    removeEntry(pid);
    throw err;
  }
  const unregister = () => {
    removeEntry(pid);
    if (entry.name !== undefined) releaseName(entry.name, pid);
  };
  trackVm(pid, cleanupPathsOf(plan), unregister);
  const onLog = plan.onLog;
  const report = child.stdio[3] as Readable;
  const handle = new VmProcessHandle({
    child: child as typeof child & { pid: number },
    entry,
    engines: plan.engines,
    onLog,
    exec: createExecApi(plan.vsockPath, execLog(onLog)),
    reportStream: report,
    cleanupPaths: cleanupPathsOf(plan),
    controlSocket: plan.controlSocket,
    timeoutMs: plan.timeoutMs,
    onStdout: mode.onStdout,
    onStderr: mode.onStderr,
    onConsole: onLog ? (chunk) => onLog({ source: "guest-console", chunk }) : undefined,
    onExit: (_report, code) => {
      unregister();
      if (code !== null && plan.rootImgIsCache) markRootfsImageClean(plan.rootImg);
    },
    onDetach: () => writeEntry({ ...entry, detached: true }),
  });
  // A boot whose workload is in the initramfs returns at once (output
  // streams from the start); one that hands the workload over returns once
  // the guest waits for it; a restore once the VMM says the vCPUs run, so
  // its failures are reported here.
  if (plan.readiness !== "agent") {
    const ready = await timedWaitReady(plan.phases, report, exited, plan.readiness, plan.readyTimeoutMs);
    const endedDuringBoot = !ready.ok && plan.readiness === "workload" && ready.vmmExited === true;
    if (!ready.ok && !endedDuringBoot) {
      await handle.kill();
      const console = (await handle.errorOutput()).slice(-2000);
      throw notReadyError(plan, { why: ready.why, consoleTail: console, ...(ready.vmmError ? { vmmError: ready.vmmError } : {}) });
    }
  }
  return handle;
}
