/**
 * Events the VMM writes on its report descriptor (docs/guest-contract.md,
 * "VMM ↔ runtime"): boot milestones, how it exited, and its own counters.
 */

export interface VmmMilestone {
  id: number;
  /** ms since the VMM process started. */
  ms: number;
}

export interface VmmExit {
  /** `snapshot`: a destructive snapshot was written and the VMM left (docs/vmstate.md). */
  reason: "guest" | "reset" | "shutdown" | "error" | "snapshot";
  status?: number;
}

export interface VmmFailure {
  code: string;
  message: string;
}

export interface VmmStats {
  wallMs: number;
  inKvmRunMs: number;
  outsideKvmRunMs: number;
  exits: Record<string, number>;
  rssKib?: number;
  [extra: string]: unknown;
}

/** A SIGUSR1 snapshot's outcome (docs/vmstate.md). */
export interface VmmSnapshotEvent {
  ok: boolean;
  dir?: string;
  error?: string;
}

export interface VmmReport {
  milestones: VmmMilestone[];
  /** A restore: ms from VMM start until the vCPUs ran again (instead of boot milestones). */
  restored?: { ms: number };
  snapshots?: VmmSnapshotEvent[];
  exit?: VmmExit;
  error?: VmmFailure;
  stats?: VmmStats;
}

const num = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/** Folds one report line into `report`; malformed lines are ignored. */
export function applyReportLine(report: VmmReport, line: string): void {
  let e: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed === null || typeof parsed !== "object") return;
    e = parsed as Record<string, unknown>;
  } catch {
    return;
  }
  switch (e.event) {
    case "milestone":
      if (num(e.id) && num(e.ms)) report.milestones.push({ id: e.id, ms: e.ms });
      break;
    case "exit":
      if (e.reason === "guest" || e.reason === "reset" || e.reason === "shutdown" || e.reason === "error" || e.reason === "snapshot") {
        report.exit = { reason: e.reason, ...(num(e.status) ? { status: e.status } : {}) };
      }
      break;
    case "restored":
      if (num(e.ms)) report.restored = { ms: e.ms };
      break;
    case "snapshot":
      (report.snapshots ??= []).push({
        ok: e.ok === true,
        ...(typeof e.dir === "string" ? { dir: e.dir } : {}),
        ...(typeof e.error === "string" ? { error: e.error } : {}),
      });
      break;
    case "error":
      report.error = { code: String(e.code ?? "VMM_ERROR"), message: String(e.message ?? "") };
      break;
    case "stats":
      if (num(e.wallMs) && num(e.inKvmRunMs) && num(e.outsideKvmRunMs)) {
        const exits = e.exits && typeof e.exits === "object" ? (e.exits as Record<string, number>) : {};
        report.stats = { ...(e as object), wallMs: e.wallMs, inKvmRunMs: e.inKvmRunMs, outsideKvmRunMs: e.outsideKvmRunMs, exits } as VmmStats;
      }
      break;
  }
}

/** Splits a byte stream into lines and feeds them to applyReportLine. */
export class ReportReader {
  readonly report: VmmReport = { milestones: [] };
  private pending = "";

  push(chunk: Buffer): void {
    this.pending += chunk.toString("utf8");
    // A runaway line from a confused VMM must not grow without bound.
    if (this.pending.length > 1 << 20) this.pending = "";
    let nl: number;
    while ((nl = this.pending.indexOf("\n")) >= 0) {
      applyReportLine(this.report, this.pending.slice(0, nl));
      this.pending = this.pending.slice(nl + 1);
    }
  }

  end(): void {
    if (this.pending.trim() !== "") applyReportLine(this.report, this.pending);
    this.pending = "";
  }
}
