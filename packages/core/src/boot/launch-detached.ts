/**
 * A detached VM (api.md §1.4): the VMM runs in its own session, not tied to
 * this process, its console appended to `<detachedLogRoot>/<pid>.boot.log`.
 * The launch returns once the VM is ready (the guest agent listens, or a
 * restore's vCPUs run), so the first exec connects at once; the VM then
 * belongs to the registry.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { BootError, ErrorCode } from "../errors/index.js";
import { removeEntry, type RegistryEntry } from "../registry/entry.js";
import { collectEntry } from "../registry/gc.js";
import { bootSnapshotPath, detachedLogRoot } from "../registry/paths.js";
import { AttachedVmHandle } from "./attach.js";
import type { VmHandle } from "./handle.js";
import { timedWaitReady } from "./launch-ready.js";
import { execLog, registerSpawned, type LaunchPlan, type NotReady } from "./launch-plan.js";

export { MILESTONE_AGENT_READY } from "./launch-ready.js";

function tail(file: string, bytes = 2000): string {
  try {
    return readFileSync(file, "utf8").slice(-bytes);
  } catch {
    return "";
  }
}

/** The plan's own error for a VM that never came up, else BOOT_DETACHED_READINESS_FAILED. */
export function notReadyError(plan: LaunchPlan, r: NotReady): Error {
  if (plan.notReady) return plan.notReady(r);
  return new BootError(
    ErrorCode.BOOT_DETACHED_READINESS_FAILED,
    `${r.why}; nothing is left running${r.consoleTail ? `. Console tail:\n${r.consoleTail}` : ""}`,
  );
}

export async function launchDetached(plan: LaunchPlan): Promise<VmHandle> {
  const logRoot = detachedLogRoot();
  mkdirSync(logRoot, { recursive: true, mode: 0o700 });
  // The pid (and so the log's name) is known only after spawn.
  const pending = path.join(logRoot, `.boot-${process.pid}-${Date.now()}.log`);
  const logFd = openSync(pending, "a", 0o644);
  const env = { ...plan.env };
  delete env.STASIS_PDEATHSIG;
  let child;
  try {
    child = plan.phases.time("spawn", () =>
      spawn(plan.binary, plan.args, { cwd: plan.cwd, env, stdio: ["ignore", logFd, logFd, "pipe"], detached: true }),
    );
  } finally {
    closeSync(logFd);
  }
  if (child.pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once("error", resolve));
    rmSync(pending, { force: true });
    throw new BootError(ErrorCode.BOOT_VMM_MISSING, `could not start the VMM ${plan.binary}: ${err.message}`, { cause: err });
  }
  child.on("error", () => {});
  const pid = child.pid;
  const logPath = bootSnapshotPath(pid);
  renameSync(pending, logPath);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let entry: RegistryEntry;
  try {
    entry = registerSpawned(plan, pid, { detached: true, bootLogPath: logPath });
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    removeEntry(pid);
    rmSync(logPath, { force: true });
    throw err;
  }

  const report = child.stdio[3] as Readable;
  const ready = await timedWaitReady(plan.phases, report, exited, plan.readiness, plan.readyTimeoutMs);
  report.destroy();
  if (!ready.ok) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
    await exited;
    const consoleTail = tail(logPath);
    collectEntry(entry, "dead");
    throw notReadyError(plan, { why: ready.why, consoleTail, ...(ready.vmmError ? { vmmError: ready.vmmError } : {}) });
  }
  child.unref();
  return new AttachedVmHandle(entry, { onLog: plan.onLog, engines: plan.engines });
}
