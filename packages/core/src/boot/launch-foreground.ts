/**
 * A VM owned by this process: the VMM is our child, tied to us by its
 * parent-death signal, its stdio ours; registered while it runs.
 */
import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { createExecApi } from "../agent/index.js";
import { BootError, ErrorCode } from "../errors/index.js";
import { markRootfsImageClean } from "../image/rootfs-cache.js";
import { removeEntry, writeEntry } from "../registry/entry.js";
import { pinNameToVmm, releaseName } from "../registry/names.js";
import { trackVm } from "./cleanup.js";
import { VmProcessHandle, type VmHandle } from "./handle.js";
import { entryFor, execLog, type LaunchPlan } from "./launch-plan.js";

export interface ForegroundStreams {
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  pdeathsig?: boolean;
}

export async function launchForeground(plan: LaunchPlan, streams: ForegroundStreams): Promise<VmHandle> {
  const env = { ...plan.env };
  if (streams.pdeathsig !== false) env.STASIS_PDEATHSIG = "1";
  const child = plan.phases.time("spawn", () =>
    spawn(plan.binary, plan.args, { cwd: plan.cwd, env, stdio: ["pipe", "pipe", "pipe", "pipe"] }),
  );
  if (child.pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once("error", resolve));
    throw new BootError(ErrorCode.BOOT_VMM_MISSING, `could not start the VMM ${plan.binary}: ${err.message}`, { cause: err });
  }
  child.on("error", () => {});
  const pid = child.pid;
  const entry = entryFor(plan, pid);
  const unregister = () => {
    removeEntry(pid);
    if (plan.name !== undefined) releaseName(plan.name, pid);
  };
  writeEntry(entry);
  if (plan.name !== undefined) pinNameToVmm(plan.name, { pid, vmmExe: plan.binary, startTicks: entry.vmmStartTicks });
  trackVm(pid, plan.runDir, unregister);
  const onLog = plan.onLog;
  return new VmProcessHandle({
    child: child as typeof child & { pid: number },
    ...(plan.name !== undefined ? { name: plan.name } : {}),
    exec: createExecApi(plan.vsockPath, execLog(onLog)),
    reportStream: child.stdio[3] as Readable,
    runDir: plan.runDir,
    controlSocket: plan.controlSocket,
    timeoutMs: plan.timeoutMs,
    onStdout: streams.onStdout,
    onStderr: streams.onStderr,
    onConsole: onLog ? (chunk) => onLog({ source: "guest-console", chunk }) : undefined,
    onExit: (_report, code) => {
      unregister();
      if (code !== null) markRootfsImageClean(plan.rootImg);
    },
    onDetach: () => writeEntry({ ...entry, detached: true }),
  });
}
