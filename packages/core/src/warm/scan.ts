/** One pass over the cache root: entries, damaged entries, fills, trash and fill claims. Garbage is ignored. */
import { lstatSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { lastUsedMs } from "./lookup.js";
import { MEMO_DIR, STATE_FILE, TRASH_PREFIX, isWarmKey, parseClaimName, parseFillName } from "./paths.js";
import { readRecord, type WarmRecord } from "./record.js";

export interface ScannedEntry {
  key: string;
  dir: string;
  record: WarmRecord;
  lastUsedMs: number;
}

export interface Scan {
  entries: ScannedEntry[];
  /** Directories named by a key that are not valid entries, with the inode found. */
  damaged: { key: string; dir: string; ino: number }[];
  fills: { name: string; dir: string; key: string; pid: number }[];
  trash: { name: string; dir: string }[];
  /** Fill claims (fill-claim.ts), live or not. */
  claims: { key: string; file: string }[];
}

export function scanWarm(root: string): Scan {
  const scan: Scan = { entries: [], damaged: [], fills: [], trash: [], claims: [] };
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return scan; // no root yet
  }
  for (const name of names.sort()) {
    if (name === MEMO_DIR) continue;
    const dir = path.join(root, name);
    if (name.startsWith(TRASH_PREFIX)) {
      scan.trash.push({ name, dir });
      continue;
    }
    const claimed = parseClaimName(name);
    if (claimed) {
      scan.claims.push({ key: claimed, file: dir });
      continue;
    }
    const fill = parseFillName(name);
    if (fill) {
      scan.fills.push({ name, dir, ...fill });
      continue;
    }
    if (!isWarmKey(name)) continue;
    let ino: number;
    try {
      ino = lstatSync(dir).ino;
    } catch {
      continue; // removed meanwhile
    }
    const record = readRecord(dir, name);
    let hasState = false;
    try {
      hasState = statSync(path.join(dir, STATE_FILE)).isFile();
    } catch {
      // missing
    }
    if (record && hasState) {
      scan.entries.push({ key: name, dir, record, lastUsedMs: lastUsedMs(dir, Date.parse(record.createdAt)) });
    } else {
      try {
        lstatSync(dir);
        scan.damaged.push({ key: name, dir, ino });
      } catch {
        // removed meanwhile: neither
      }
    }
  }
  return scan;
}

/** Least recently used first (ties: older, then by key). */
export function byLeastRecentlyUsed(a: ScannedEntry, b: ScannedEntry): number {
  return a.lastUsedMs - b.lastUsedMs || Date.parse(a.record.createdAt) - Date.parse(b.record.createdAt) || (a.key < b.key ? -1 : 1);
}
