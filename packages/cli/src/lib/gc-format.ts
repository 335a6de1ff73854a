import { describeVm } from "./describe.js";

/** The GcResult fields the report uses. */
export interface GcLine {
  pid: number;
  name?: string;
  status: "alive" | "dead" | "recycled";
  removedPaths: string[];
  failedPaths: string[];
  registryRemoved: boolean;
}

function paths(n: number): string {
  return `${n} path${n === 1 ? "" : "s"}`;
}

/** Human `gc` output: one line per entry handled, then a summary; failures on stderr. */
export function gcReport(results: readonly GcLine[], dryRun: boolean): { stdout: string; stderr: string } {
  const out: string[] = [];
  const err: string[] = [];
  for (const r of results) {
    const why = r.status === "recycled" ? "pid reused by another process" : r.status;
    const files = r.removedPaths.length + (dryRun ? r.failedPaths.length : 0);
    out.push(`${dryRun ? "would remove" : "removed"} ${describeVm(r)}: ${why}, ${paths(files)}`);
    if (r.failedPaths.length > 0 && !dryRun) err.push(`stasis: gc: could not remove for ${describeVm(r)}: ${r.failedPaths.join(", ")}`);
  }
  const n = results.length;
  const entries = `${n} entr${n === 1 ? "y" : "ies"}`;
  out.push(n === 0 ? "gc: nothing to clean up" : dryRun ? `gc (dry run): ${entries} would be removed` : `gc: ${entries} removed`);
  return { stdout: out.map((l) => `${l}\n`).join(""), stderr: err.map((l) => `${l}\n`).join("") };
}
