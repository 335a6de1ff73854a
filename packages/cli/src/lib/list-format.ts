/** `stasis list`: the rows and the table, from registry entries. */
import { readFileSync } from "node:fs";

/** The registry fields the table uses (a structural subset of RegistryEntry). */
export interface ListEntry {
  pid: number;
  name?: string;
  startedAt: number;
  memoryCeilingMib?: number;
  portForward?: { hostPort: number; guestPort: number; hostAddr?: string }[];
  forkedFrom?: string;
}

/** `5s`, `3m`, `2h`, `4d`: the largest whole unit. */
export function formatUptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** `RSS/ceiling` in MiB, e.g. `143M/512M`; unknown parts are `?`; `?` when both are. */
export function formatMem(rssBytes: number | null, ceilingMib: number | undefined): string {
  if (rssBytes === null && ceilingMib === undefined) return "?";
  const rss = rssBytes === null ? "?" : `${Math.round(rssBytes / (1024 * 1024))}M`;
  const ceiling = ceilingMib === undefined ? "?" : `${ceilingMib}M`;
  return `${rss}/${ceiling}`;
}

export function formatPorts(ports: ListEntry["portForward"]): string {
  if (!ports || ports.length === 0) return "-";
  return ports.map((p) => `${p.hostPort}:${p.guestPort}`).join(",");
}

/** Columns separated by two spaces, each as wide as its widest cell; no trailing blanks. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd() + "\n").join("");
}

export const LIST_HEADER = ["PID", "NAME", "UP", "MEM", "PORTS", "FORKED-FROM"] as const;

export function listTable(entries: readonly ListEntry[], now: number, rss: (pid: number) => number | null): string {
  const rows = entries.map((e) => [
    String(e.pid),
    e.name ?? "-",
    formatUptime(now - e.startedAt),
    formatMem(rss(e.pid), e.memoryCeilingMib),
    formatPorts(e.portForward),
    e.forkedFrom ?? "-",
  ]);
  return formatTable([[...LIST_HEADER], ...rows]);
}

/** VmRSS from the text of /proc/<pid>/status, in bytes; null if absent. */
export function parseVmRss(status: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s+kB\s*$/m.exec(status);
  return m ? Number(m[1]) * 1024 : null;
}

/** The host resident set of a process, in bytes; null where unreadable (gone, not Linux). */
export function hostRssBytes(pid: number): number | null {
  try {
    return parseVmRss(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return null;
  }
}
