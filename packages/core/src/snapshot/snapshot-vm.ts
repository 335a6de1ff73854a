/**
 * `vm.snapshot(opts)` for any handle (api.md §4.2): validate, choose the
 * VM's engine, honour dryRun, hand the rest to the engine.
 */
import type { OnLog } from "../log/events.js";
import type { RegistryEntry } from "../registry/entry.js";
import type { SnapshotEngine, SnapshotOptions, SnapshotResult, SnapshotSource } from "./engine.js";
import { findEngine } from "./engines.js";
import { checkOutDir } from "./out-dir.js";

export const DEFAULT_SNAPSHOT_TIMEOUT_MS = 90_000;

/** What the handle adds: the engines and onLog its VM was booted with. */
export interface SnapshotContext {
  engines?: readonly SnapshotEngine[];
  onLog?: OnLog;
}

/** api.md §5.1: the VM's recorded engine; an entry with a vmstate path is vmstate; otherwise criu. */
export function vmEngineName(entry: RegistryEntry): string {
  return entry.engine ?? (entry.vmstatePath ? "vmstate" : "criu");
}

/** Both the call's and the boot's onLog fire (B106). */
export function bothLogs(a: OnLog | undefined, b: OnLog | undefined): OnLog | undefined {
  if (!a || !b || a === b) return a ?? b;
  return (evt) => {
    a(evt);
    b(evt);
  };
}

function checkTimeout(timeoutMs: unknown): number {
  if (timeoutMs === undefined) return DEFAULT_SNAPSHOT_TIMEOUT_MS;
  if (typeof timeoutMs !== "number" || !(timeoutMs > 0)) {
    throw new TypeError(`snapshot timeoutMs must be a positive number of milliseconds, got ${JSON.stringify(timeoutMs)}`);
  }
  return timeoutMs;
}

export async function snapshotVm(source: SnapshotSource, opts: SnapshotOptions, ctx: SnapshotContext = {}): Promise<SnapshotResult> {
  if (opts === null || typeof opts !== "object") throw new TypeError("snapshot needs options: { outDir }");
  const timeoutMs = checkTimeout(opts.timeoutMs);
  const engine = findEngine(vmEngineName(source.entry), [...(opts.engines ?? []), ...(ctx.engines ?? [])]);
  const outDir = checkOutDir(opts.outDir);
  const leaveRunning = opts.leaveRunning === true;
  if (opts.dryRun === true) {
    return {
      dryRun: true,
      engine: engine.name,
      snapDir: outDir,
      elapsedMs: 0,
      consoleLog: "",
      snappedAt: Date.now(),
      destructive: !leaveRunning,
      sourcePid: source.pid,
      ...(source.name !== undefined ? { sourceName: source.name } : {}),
    };
  }
  const onLog = bothLogs(opts.onLog, ctx.onLog);
  return engine.snapshot(source, {
    outDir,
    leaveRunning,
    tcpClose: opts.tcpClose === true,
    timeoutMs,
    ...(opts.dumpCmd !== undefined ? { dumpCmd: opts.dumpCmd } : {}),
    ...(opts.scratch === true ? { scratch: true } : {}),
    ...(onLog ? { onLog } : {}),
  });
}
