/**
 * A detached VM (api.md §1.4): the VMM runs in its own session, not tied to
 * this process, its console appended to `<detachedLogRoot>/<pid>.boot.log`.
 * boot() returns once the guest agent is listening (milestone 4), so the
 * first exec connects at once; the VM then belongs to the registry.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { BootError, ErrorCode } from "../errors/index.js";
import { writeEntry } from "../registry/entry.js";
import { collectEntry } from "../registry/gc.js";
import { pinNameToVmm } from "../registry/names.js";
import { bootSnapshotPath, detachedLogRoot } from "../registry/paths.js";
import { AttachedVmHandle } from "./attach.js";
import type { VmHandle } from "./handle.js";
import { entryFor, execLog, type LaunchPlan } from "./launch-plan.js";
import { ReportReader } from "./vmm-report.js";

/** Milestone the agent writes once it listens (docs/guest-contract.md). */
export const MILESTONE_AGENT_READY = 4;

type Readiness = { ok: true } | { ok: false; why: string };

function waitForAgent(report: Readable, exited: Promise<number | null>, timeoutMs: number | null): Promise<Readiness> {
  const reader = new ReportReader();
  return new Promise((resolve) => {
    const timer = timeoutMs === null ? undefined : setTimeout(() => resolve({ ok: false, why: `the guest was not up within ${timeoutMs} ms` }), timeoutMs);
    const done = (r: Readiness) => {
      if (timer) clearTimeout(timer);
      report.off("data", onData);
      resolve(r);
    };
    const onData = (c: Buffer) => {
      reader.push(c);
      if (reader.report.milestones.some((m) => m.id === MILESTONE_AGENT_READY)) done({ ok: true });
    };
    report.on("data", onData);
    report.on("error", () => {});
    void exited.then((code) => {
      reader.end();
      const err = reader.report.error;
      done({ ok: false, why: `the VMM exited (status ${code})${err ? `: ${err.code}: ${err.message}` : ""} before the guest was up` });
    });
  });
}

function tail(file: string, bytes = 2000): string {
  try {
    return readFileSync(file, "utf8").slice(-bytes);
  } catch {
    return "";
  }
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
  const entry = entryFor(plan, pid, { detached: true, bootLogPath: logPath });
  writeEntry(entry);
  if (plan.name !== undefined) pinNameToVmm(plan.name, { pid, vmmExe: plan.binary, startTicks: entry.vmmStartTicks });

  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const report = child.stdio[3] as Readable;
  const ready = await waitForAgent(report, exited, plan.timeoutMs);
  report.destroy();
  if (!ready.ok) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
    await exited;
    const console = tail(logPath);
    collectEntry(entry, "dead");
    throw new BootError(
      ErrorCode.BOOT_DETACHED_READINESS_FAILED,
      `${ready.why}; nothing is left running${console ? `. Console tail:\n${console}` : ""}`,
    );
  }
  child.unref();
  return new AttachedVmHandle(entry, execLog(plan.onLog));
}
