/**
 * "I am filling this key": a boot that missed takes the key's claim before
 * it boots cold, so that concurrent boots of the same new shape wait for its
 * entry instead of all booting cold (a cold boot can take half a minute of
 * a core where guest-kernel code is emulated).
 *
 * The claim is `<root>/.claim-<key>`, created exclusively, holding the
 * claimer's pid and process start time. It is advice, not a lock: the
 * cache's safety rests on publishing by one rename (publish.ts), so a
 * claim lost to a race only costs one extra cold boot. A claim whose
 * process is gone is stale: the next claimer takes it over, prune removes it.
 */
import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { processStartTicks, validatePid } from "../registry/process-identity.js";
import { CLAIM_PREFIX, checkKey, warmRoot } from "./paths.js";

export interface FillClaim {
  key: string;
  /** Gives the claim up (after the fill, or when the boot fails). Idempotent. */
  release(): void;
}

/** Who holds a claim, as written in it. */
export interface ClaimHolder {
  pid: number;
  startTicks?: number;
}

export type ClaimOutcome = { claim: FillClaim } | { heldBy: ClaimHolder };

export function claimPath(key: string, root = warmRoot()): string {
  return path.join(root, `${CLAIM_PREFIX}${checkKey(key)}`);
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** The holder written in the claim file at `file`; undefined when there is none or it is unreadable. */
export function readClaim(file: string): ClaimHolder | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  try {
    const obj = JSON.parse(text) as Record<string, unknown>;
    if (typeof obj.pid !== "number" || !Number.isInteger(obj.pid) || obj.pid <= 0) return undefined;
    return typeof obj.startTicks === "number" ? { pid: obj.pid, startTicks: obj.startTicks } : { pid: obj.pid };
  } catch {
    return undefined; // garbage (claims are never seen half-written)
  }
}

/** True while the process that wrote `holder` still runs. */
export function isHolderAlive(holder: ClaimHolder): boolean {
  return validatePid(holder.pid, holder.startTicks !== undefined ? { startTicks: holder.startTicks } : {}) === "alive";
}

/**
 * Creates the claim with its content in one step: written beside it, then
 * hard-linked to its name (which fails if the name exists), so a reader
 * never sees a half-written claim.
 */
function tryCreate(file: string): boolean {
  const ticks = processStartTicks(process.pid);
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString("hex")}`;
  writeFileSync(tmp, JSON.stringify({ pid: process.pid, ...(ticks !== undefined ? { startTicks: ticks } : {}) }), { mode: 0o644 });
  try {
    linkSync(tmp, file);
    return true;
  } catch (err) {
    if (errno(err) === "EEXIST") return false;
    throw err;
  } finally {
    remove(tmp);
  }
}

function remove(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // gone already
  }
}

/**
 * Takes the claim for `key`, or says who holds it. A stale claim (its
 * process gone, or unreadable) is taken over. A root that cannot be
 * written gives a claim that holds nothing: the boot goes on as it would
 * without claims.
 */
export function claimFill(key: string, root = warmRoot()): ClaimOutcome {
  const file = claimPath(key, root);
  const mine = (): ClaimOutcome => {
    let released = false;
    return {
      claim: {
        key,
        release: () => {
          if (released) return;
          released = true;
          // Only our own claim goes: a taker-over's stays.
          if (readClaim(file)?.pid === process.pid) remove(file);
        },
      },
    };
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      mkdirSync(root, { recursive: true });
      if (tryCreate(file)) return mine();
    } catch {
      return { claim: { key, release: () => {} } };
    }
    const holder = readClaim(file);
    if (holder && isHolderAlive(holder)) return { heldBy: holder };
    // Stale. Two boots may both find it so and one may remove the other's
    // fresh claim: that costs one extra cold boot, never the cache.
    remove(file);
  }
  return { claim: { key, release: () => {} } };
}
