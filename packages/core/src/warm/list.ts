/** Every entry of the cache, with its disk use. */
import type { WarmHit } from "./lookup.js";
import { warmRoot } from "./paths.js";
import { byLeastRecentlyUsed, scanWarm } from "./scan.js";
import { treeInodes } from "./usage.js";

export interface WarmEntry extends WarmHit {
  /**
   * Allocated bytes of the entry's files. An inode linked by several
   * entries (the shared root image) is counted once across the cache, with
   * the most recently used of them: the sum over entries is the cache's
   * total, and an entry's bytes are about what removing the entries used
   * less recently than it, then it, frees.
   */
  bytes: number;
}

/** The valid entries, most recently used first. Changes nothing: damaged entries are skipped (lookup and prune remove them). */
export function listWarm(root = warmRoot()): WarmEntry[] {
  const entries = scanWarm(root).entries.sort(byLeastRecentlyUsed).reverse();
  const seen = new Set<string>();
  return entries.map((e) => {
    let bytes = 0;
    for (const [ino, b] of treeInodes(e.dir)) {
      if (seen.has(ino)) continue;
      seen.add(ino);
      bytes += b;
    }
    return {
      key: e.key,
      dir: e.dir,
      createdAt: e.record.createdAt,
      lastUsedAt: new Date(e.lastUsedMs).toISOString(),
      inputs: e.record.inputs,
      bytes,
    };
  });
}
