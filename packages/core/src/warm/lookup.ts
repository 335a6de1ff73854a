/** Finding the entry for a key before a boot, and marking it used. */
import { closeSync, lstatSync, openSync, statSync, utimesSync } from "node:fs";
import path from "node:path";
import { discardIfSame } from "./discard.js";
import type { WarmInputsRecord } from "./key.js";
import { LAST_USED_FILE, STATE_FILE, checkKey, warmRoot } from "./paths.js";
import { readRecord } from "./record.js";

/** An entry found by lookupWarm. */
export interface WarmHit {
  key: string;
  /** `<root>/<key>`: the snapshot bundle plus warm.json and last-used. */
  dir: string;
  /** ISO-8601 time of publication. */
  createdAt: string;
  /** ISO-8601 time of the last lookup (or of publication). */
  lastUsedAt: string;
  inputs: WarmInputsRecord;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** ms of the last use: last-used's mtime, else the fallback. */
export function lastUsedMs(dir: string, fallbackMs: number): number {
  try {
    return statSync(path.join(dir, LAST_USED_FILE)).mtimeMs;
  } catch {
    return fallbackMs;
  }
}

/** Sets last-used's mtime to now (creating it if it is missing); false if the entry has gone. */
function touch(dir: string): boolean {
  const file = path.join(dir, LAST_USED_FILE);
  const now = new Date();
  try {
    utimesSync(file, now, now);
    return true;
  } catch (err) {
    if (errno(err) !== "ENOENT") return true; // cannot mark it (read-only cache?): still usable
  }
  try {
    closeSync(openSync(file, "a"));
    return true;
  } catch {
    return false;
  }
}

/**
 * The entry for `key`, marked as just used; undefined when there is none.
 * A directory under the key that is not a valid entry (no parseable
 * warm.json for this key and format, or no state.vmstate) is discarded and
 * reported as a miss: this never throws for a damaged entry.
 *
 * An entry can be removed (prune, `stasis warm rm`) right after it is
 * returned; restoring from it then fails to open its files, which the
 * caller treats like a miss. Pass the key in pruneWarm's `keep` while it is
 * being restored.
 */
export function lookupWarm(key: string, root = warmRoot()): WarmHit | undefined {
  const dir = path.join(root, checkKey(key));
  let ino: number;
  try {
    ino = lstatSync(dir).ino;
  } catch {
    return undefined; // no entry (or no root)
  }
  const record = readRecord(dir, key);
  let valid = record !== undefined;
  if (valid) {
    try {
      valid = statSync(path.join(dir, STATE_FILE)).isFile();
    } catch {
      valid = false;
    }
  }
  if (!valid || !record) {
    // Only the directory found damaged goes: one that replaced it meanwhile stays.
    discardIfSame(dir, ino);
    return undefined;
  }
  if (!touch(dir)) return undefined;
  const createdMs = Date.parse(record.createdAt);
  return {
    key,
    dir,
    createdAt: record.createdAt,
    lastUsedAt: new Date(lastUsedMs(dir, createdMs)).toISOString(),
    inputs: record.inputs,
  };
}
