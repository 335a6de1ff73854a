/**
 * Keeping the cache within its bound: leftovers first (trash, fills and fill
 * claims of processes that are gone, damaged entries), then entries least recently
 * used first until the total is at most maxBytes. Safe to run from several
 * processes at once: an entry someone else removed meanwhile counts as
 * removed, so concurrent prunes do not remove more than one would.
 */
import { isRunning } from "../registry/process-identity.js";
import { discardIfSame, discardWarm, removeTree } from "./discard.js";
import { isHolderAlive, readClaim } from "./fill-claim.js";
import { checkKey, parseTrashName, warmRoot } from "./paths.js";
import { byLeastRecentlyUsed, scanWarm } from "./scan.js";
import { CacheUsage, treeBytes, treeInodes } from "./usage.js";

export type WarmRemovalReason = "lru" | "stale-fill" | "trash" | "damaged" | "removed";

export interface WarmRemoval {
  /** The entry's key; for trash, the name it had. */
  key: string;
  /** The path removed. */
  dir: string;
  /** Allocated bytes this freed (a shared inode counts when its last holder goes). */
  bytes: number;
  why: WarmRemovalReason;
}

export interface PruneWarmOptions {
  /** Total allocated bytes of the entries to stay at or below. */
  maxBytes: number;
  /** Keys never removed here (the entry just published, or being restored). */
  keep?: string[];
}

export interface PruneWarmResult {
  removed: WarmRemoval[];
  /** Allocated bytes of the entries left. */
  totalBytes: number;
  maxBytes: number;
}

/** Leftovers: trash, stale fills, damaged entries. */
function removeLeftovers(scan: ReturnType<typeof scanWarm>): WarmRemoval[] {
  const removed: WarmRemoval[] = [];
  for (const t of scan.trash) {
    const bytes = treeBytes(t.dir);
    removeTree(t.dir);
    removed.push({ key: parseTrashName(t.name) ?? t.name, dir: t.dir, bytes, why: "trash" });
  }
  for (const f of scan.fills) {
    if (isRunning(f.pid)) continue; // still filling
    const bytes = treeBytes(f.dir);
    removeTree(f.dir);
    removed.push({ key: f.key, dir: f.dir, bytes, why: "stale-fill" });
  }
  // A claim of a process that is gone holds nothing (and frees no space: not reported).
  for (const c of scan.claims) {
    const holder = readClaim(c.file);
    if (!holder || !isHolderAlive(holder)) removeTree(c.file);
  }
  for (const d of scan.damaged) {
    const bytes = treeBytes(d.dir);
    discardIfSame(d.dir, d.ino);
    removed.push({ key: d.key, dir: d.dir, bytes, why: "damaged" });
  }
  return removed;
}

export function pruneWarm(opts: PruneWarmOptions, root = warmRoot()): PruneWarmResult {
  const { maxBytes } = opts;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new TypeError(`pruneWarm: maxBytes must be a whole number of bytes, got ${maxBytes}`);
  const keep = new Set((opts.keep ?? []).map(checkKey));
  const scan = scanWarm(root);
  const removed = removeLeftovers(scan);
  const usage = new CacheUsage();
  const entries = scan.entries.sort(byLeastRecentlyUsed);
  for (const e of entries) usage.add(e.key, treeInodes(e.dir));
  for (const e of entries) {
    if (usage.totalBytes <= maxBytes) break;
    if (keep.has(e.key)) continue;
    const freed = usage.remove(e.key);
    // Already gone (a concurrent prune or rm): its bytes are freed all the same.
    if (discardWarm(e.key, root)) removed.push({ key: e.key, dir: e.dir, bytes: freed, why: "lru" });
  }
  return { removed, totalBytes: usage.totalBytes, maxBytes };
}
