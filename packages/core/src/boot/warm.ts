/**
 * boot()'s side of the warm cache (docs/warm-boot.md): which boots may use
 * it, restoring a hit, and filling the cache from a cold boot that is idle
 * and waiting for its workload. The cache itself is ../warm/.
 */
import { rmSync } from "node:fs";
import { ErrorCode, isStasisError } from "../errors/index.js";
import type { OnLog } from "../log/events.js";
import type { SnapshotEngine } from "../snapshot/engine.js";
import { readMeta, writeMeta } from "../snapshot/meta.js";
import { discardWarm, fillPath, lookupWarm, publishWarm, pruneWarm, warmKey, warmMaxBytes, type FillClaim, type WarmHit, type WarmInputs } from "../warm/index.js";
import type { VmHandle } from "./handle.js";
import type { BootOptions } from "./options.js";

/** Everything that shapes the guest up to the point where it waits for its workload, but what the options add. */
export type WarmShape = Omit<WarmInputs, "args" | "vmmEnv">;

export interface WarmPlan {
  key: string;
  inputs: WarmInputs;
  /** This boot's claim on filling the key, given up once the fill is done. */
  claim?: FillClaim;
}

/** Why a boot cannot be warm, or undefined when it can. */
export function warmRefusal(opts: BootOptions, engine: SnapshotEngine | undefined): string | undefined {
  if (opts.warm === false) return "warm: false";
  if (process.env.STASIS_WARM === "0") return "STASIS_WARM=0";
  if (engine?.name !== "vmstate") return "the VM's snapshot engine is not vmstate";
  if (opts.vmmEnv?.STASIS_VSOCK) return "the caller provides the vsock bridge";
  // A restore cannot take extra VMM arguments that shape a cold boot (--append, …).
  if (opts.args !== undefined && opts.args.length > 0) return "extra VMM arguments";
  return undefined;
}

export function warmPlan(shape: WarmShape, opts: BootOptions): WarmPlan {
  const inputs: WarmInputs = { ...shape, args: [], vmmEnv: { ...(opts.vmmEnv ?? {}) } };
  return { key: warmKey(inputs), inputs };
}

/**
 * A damaged, stale or incompatible entry: the boot discards it and boots
 * cold (refilling it) instead of failing. Anything else (a name in use, no
 * KVM, a refused workload) is the caller's and is thrown as is.
 */
export function isEntryProblem(err: unknown): boolean {
  return [
    ErrorCode.SNAPSHOT_BUNDLE_INVALID,
    ErrorCode.SNAPSHOT_INCOMPATIBLE,
    ErrorCode.SNAPSHOT_IMAGE_MISMATCH,
    ErrorCode.SNAPSHOT_THAW_FAILED,
    ErrorCode.BOOT_SNAPSHOT_NOT_FOUND,
    ErrorCode.BOOT_IMAGE_NOT_FOUND,
    ErrorCode.BOOT_DETACHED_READINESS_FAILED,
    ErrorCode.EXEC_AGENT_UNAVAILABLE,
    ErrorCode.EXEC_PROTOCOL,
  ].some((code) => isStasisError(err, code)) || !isStasisError(err);
}

export function findWarm(plan: WarmPlan): WarmHit | undefined {
  return lookupWarm(plan.key);
}

export function dropWarm(entry: WarmHit, err: unknown, onLog: OnLog | undefined): void {
  discardWarm(entry.key);
  onLog?.({ source: "warm", event: "discarded", key: entry.key, message: (err as Error)?.message ?? String(err) });
}

/**
 * Snapshots `vm` — booted cold, idle, its workload not yet given — into the
 * cache. Never fails the boot: the VM runs on uncached if anything goes wrong.
 */
export async function fillWarm(vm: VmHandle, plan: WarmPlan, onLog: OnLog | undefined): Promise<void> {
  const dir = fillPath(plan.key);
  try {
    await vm.snapshot({ outDir: dir, leaveRunning: true });
    // The entry is every later VM's past: it must not carry this VM's name or pid.
    const { sourceName: _n, sourcePid: _p, forkedFrom: _f, ...meta } = readMeta(dir);
    writeMeta(dir, meta);
    const outcome = publishWarm(plan.key, dir, plan.inputs);
    onLog?.({ source: "warm", event: outcome, key: plan.key });
    if (outcome === "published") pruneWarm({ maxBytes: warmMaxBytes(), keep: [plan.key] });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    onLog?.({ source: "warm", event: "fill-failed", key: plan.key, message: (err as Error)?.message ?? String(err) });
  } finally {
    // Boots waiting for this entry go on now: it is published, or it will not be.
    plan.claim?.release();
  }
}
