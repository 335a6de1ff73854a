/** Waiting for a fresh VMM to be up, as its report descriptor tells it (docs/guest-contract.md, docs/vmstate.md). */
import type { Readable } from "node:stream";
import type { PhaseTimer } from "../log/events.js";
import type { Readiness } from "./launch-plan.js";
import { ReportReader, type VmmFailure, type VmmReport } from "./vmm-report.js";

/** Milestone the agent writes once it listens (docs/guest-contract.md). */
export const MILESTONE_AGENT_READY = 4;
/** Milestone /init writes once the machine is up and it waits for the workload. */
export const MILESTONE_AWAITING_WORKLOAD = 5;

export type ReadyOutcome = { ok: true; report: VmmReport } | { ok: false; why: string; vmmError?: VmmFailure; vmmExited?: boolean };

function seen(report: VmmReport, id: number): boolean {
  return report.milestones.some((m) => m.id === id);
}

function isReady(report: VmmReport, readiness: Readiness): boolean {
  switch (readiness) {
    case "restored":
      return report.restored !== undefined;
    case "agent":
      return seen(report, MILESTONE_AGENT_READY);
    case "workload":
      return seen(report, MILESTONE_AGENT_READY) && seen(report, MILESTONE_AWAITING_WORKLOAD);
  }
}

/** Reads `report` (alongside any other reader) until the VM is ready, the VMM exits, or the deadline. */
export function waitReady(
  report: Readable,
  exited: Promise<number | null>,
  readiness: Readiness,
  timeoutMs: number | null,
): Promise<ReadyOutcome> {
  const reader = new ReportReader();
  const what = readiness === "restored" ? "the VM was restored" : "the guest was up";
  const notWhat = readiness === "restored" ? "the VM was not restored" : "the guest was not up";
  return new Promise((resolve) => {
    let settled = false;
    const timer =
      timeoutMs === null ? undefined : setTimeout(() => done({ ok: false, why: `${notWhat} within ${timeoutMs} ms` }), timeoutMs);
    const done = (r: ReadyOutcome) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      report.off("data", onData);
      resolve(r);
    };
    const onData = (c: Buffer) => {
      reader.push(c);
      if (isReady(reader.report, readiness)) done({ ok: true, report: reader.report });
    };
    report.on("data", onData);
    report.on("error", () => {});
    const streamClosed = new Promise<void>((r) => (report.readableEnded || report.destroyed ? r() : report.once("close", () => r())));
    void exited.then(async (code) => {
      // The last report lines may still be in flight when 'exit' fires.
      await Promise.race([streamClosed, new Promise((r) => setTimeout(r, 500))]);
      if (settled) return;
      reader.end();
      if (isReady(reader.report, readiness)) return done({ ok: true, report: reader.report });
      const err = reader.report.error;
      done({
        ok: false,
        why: `the VMM exited (status ${code})${err ? `: ${err.code}: ${err.message}` : ""} before ${what}`,
        vmmExited: true,
        ...(err ? { vmmError: err } : {}),
      });
    });
  });
}

/**
 * Waits as waitReady does and records how long that took as the `ready`
 * phase, plus, for a restore, the VMM's own start → vCPUs running time
 * (`ready.vmm`): the difference is process start-up and the report pipe.
 */
export async function timedWaitReady(
  phases: PhaseTimer,
  ...args: Parameters<typeof waitReady>
): Promise<ReadyOutcome> {
  const t0 = performance.now();
  const ready = await waitReady(...args);
  phases.record("ready", performance.now() - t0);
  if (ready.ok && ready.report.restored) phases.record("ready.vmm", ready.report.restored.ms);
  return ready;
}
