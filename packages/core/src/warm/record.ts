/** `warm.json`: what an entry is (its key and format) and what it was booted from. */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { WARM_FORMAT, type WarmInputsRecord } from "./key.js";
import { RECORD_FILE } from "./paths.js";

export interface WarmRecord {
  format: number;
  key: string;
  /** ISO-8601 time of publication. */
  createdAt: string;
  inputs: WarmInputsRecord;
}

/** The record in `dir` when it is one of ours for `key`; undefined if missing, garbled or another's. Never throws. */
export function readRecord(dir: string, key: string): WarmRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path.join(dir, RECORD_FILE), "utf8"));
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
  const r = v as Record<string, unknown>;
  if (r.format !== WARM_FORMAT || r.key !== key) return undefined;
  if (typeof r.createdAt !== "string" || Number.isNaN(Date.parse(r.createdAt))) return undefined;
  if (r.inputs === null || typeof r.inputs !== "object" || Array.isArray(r.inputs)) return undefined;
  return r as unknown as WarmRecord;
}

export function writeRecord(dir: string, record: WarmRecord): void {
  writeFileSync(path.join(dir, RECORD_FILE), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644 });
}
