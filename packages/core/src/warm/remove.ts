/** Removing entries by key or unique key prefix (`stasis warm rm`). */
import { ErrorCode } from "../errors/index.js";
import { discardIfSame, discardWarm } from "./discard.js";
import { WarmError } from "./errors.js";
import { warmRoot } from "./paths.js";
import type { WarmRemoval } from "./prune.js";
import { scanWarm } from "./scan.js";
import { CacheUsage, treeInodes } from "./usage.js";

/** The keys in the cache now: valid entries and damaged ones (so those can be removed by hand too). */
export function allWarmKeys(root = warmRoot()): string[] {
  const scan = scanWarm(root);
  return [...scan.entries.map((e) => e.key), ...scan.damaged.map((d) => d.key)].sort();
}

/**
 * The full key each of `prefixes` names (a key or a unique prefix of one,
 * any case). WARM_ENTRY_NOT_FOUND, naming every prefix that matches none
 * or several (with what it matched), when any does.
 */
export function resolveWarmKeys(prefixes: readonly string[], root = warmRoot()): string[] {
  const keys = allWarmKeys(root);
  const problems: string[] = [];
  const out: string[] = [];
  for (const raw of prefixes) {
    const prefix = raw.toLowerCase();
    const matches = /^[0-9a-f]{1,32}$/.test(prefix) ? keys.filter((k) => k.startsWith(prefix)) : [];
    if (matches.length === 1) {
      if (!out.includes(matches[0]!)) out.push(matches[0]!);
    } else if (matches.length === 0) {
      problems.push(`no entry matches ${JSON.stringify(raw)}`);
    } else {
      problems.push(`${JSON.stringify(raw)} is ambiguous: it matches ${matches.join(", ")}`);
    }
  }
  if (problems.length > 0) {
    throw new WarmError(
      ErrorCode.WARM_ENTRY_NOT_FOUND,
      `${problems.join("; ")}; nothing was removed. \`stasis warm ls\` lists the keys; a prefix must name exactly one entry`,
    );
  }
  return out;
}

/** Removes the entries (valid or damaged) with these full keys; what each freed. Keys already gone are skipped. */
export function removeWarm(keys: readonly string[], root = warmRoot()): WarmRemoval[] {
  const scan = scanWarm(root);
  const usage = new CacheUsage();
  const found = new Map<string, { dir: string; ino?: number }>();
  for (const e of scan.entries) found.set(e.key, { dir: e.dir });
  for (const d of scan.damaged) found.set(d.key, { dir: d.dir, ino: d.ino });
  for (const [key, { dir }] of found) usage.add(key, treeInodes(dir));
  const removed: WarmRemoval[] = [];
  for (const key of keys) {
    const hit = found.get(key);
    if (!hit) continue;
    const bytes = usage.remove(key);
    if (hit.ino !== undefined) discardIfSame(hit.dir, hit.ino);
    else if (!discardWarm(key, root)) continue; // removed meanwhile by someone else
    removed.push({ key, dir: hit.dir, bytes, why: "removed" });
  }
  return removed;
}
