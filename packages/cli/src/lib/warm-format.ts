/** `stasis warm`: the table and the reports, from warm cache entries and removals. */
import path from "node:path";
import { formatTable, formatUptime } from "./list-format.js";

/** The WarmEntry fields the table uses (inputs as recorded: read defensively). */
export interface WarmLsEntry {
  key: string;
  bytes: number;
  createdAt: string;
  lastUsedAt: string;
  inputs: { image?: { path?: string }; memoryMib?: number; cpus?: number };
}

/** The WarmRemoval fields the reports use. */
export interface WarmRemovalLine {
  key: string;
  bytes: number;
  why: string;
}

/** Binary units, one decimal below 10: `512B`, `4.0K`, `340M`, `1.2G`. */
export function formatBytes(n: number): string {
  const units = ["K", "M", "G", "T", "P"];
  if (n < 1024) return `${n}B`;
  let v = n;
  let unit = "B";
  for (const u of units) {
    if (v < 1024) break;
    v /= 1024;
    unit = u;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)}${unit}`;
}

/** The key as the table shows it (any unique prefix works for rm). */
export function shortKey(key: string): string {
  return key.slice(0, 12);
}

function ago(iso: string, now: number): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? "?" : `${formatUptime(now - t)} ago`;
}

export const WARM_HEADER = ["KEY", "IMAGE", "MEM", "CPUS", "SIZE", "CREATED", "LAST-USED"] as const;

export function warmTable(entries: readonly WarmLsEntry[], now: number): string {
  const rows = entries.map((e) => [
    shortKey(e.key),
    e.inputs.image?.path ? path.basename(e.inputs.image.path) : "?",
    e.inputs.memoryMib !== undefined ? `${e.inputs.memoryMib}M` : "?",
    e.inputs.cpus !== undefined ? String(e.inputs.cpus) : "?",
    formatBytes(e.bytes),
    ago(e.createdAt, now),
    ago(e.lastUsedAt, now),
  ]);
  return formatTable([[...WARM_HEADER], ...rows]);
}

const REASONS: Record<string, string> = {
  lru: "least recently used",
  "stale-fill": "unfinished fill of a process that is gone",
  trash: "left over from an interrupted removal",
  damaged: "damaged entry",
  removed: "removed",
};

function entries(n: number): string {
  return `${n} entr${n === 1 ? "y" : "ies"}`;
}

function sum(removed: readonly WarmRemovalLine[]): number {
  return removed.reduce((s, r) => s + r.bytes, 0);
}

/** `stasis warm rm`: one line per entry removed, then a summary. */
export function warmRmReport(removed: readonly WarmRemovalLine[]): string {
  const lines = removed.map((r) => `removed ${shortKey(r.key)} (${formatBytes(r.bytes)})`);
  lines.push(removed.length === 0 ? "warm rm: nothing to remove" : `warm rm: ${entries(removed.length)} removed, ${formatBytes(sum(removed))} freed`);
  return lines.map((l) => `${l}\n`).join("");
}

/** `stasis warm prune`: one line per removal with its reason, then what is left against the bound. */
export function warmPruneReport(r: { removed: readonly WarmRemovalLine[]; totalBytes: number; maxBytes: number }): string {
  const lines = r.removed.map((x) => `removed ${shortKey(x.key)} (${formatBytes(x.bytes)}): ${REASONS[x.why] ?? x.why}`);
  const left = `${formatBytes(r.totalBytes)} left (max ${formatBytes(r.maxBytes)})`;
  lines.push(r.removed.length === 0 ? `warm prune: nothing to remove; ${left}` : `warm prune: ${r.removed.length} removed, ${formatBytes(sum(r.removed))} freed; ${left}`);
  return lines.map((l) => `${l}\n`).join("");
}
