/**
 * Removing what dead VMs left behind (api.md §10.1 runGc, cli.md §3.10):
 * for every entry whose VMM is dead or whose pid now belongs to another
 * process, delete its cleanupPaths, its boot log, its name and the entry.
 */
import { existsSync, rmSync } from "node:fs";
import { entryStatus, readAllEntries, readEntry, removeEntry, type RegistryEntry } from "./entry.js";
import { pruneNames, releaseName } from "./names.js";
import { registryRoot } from "./paths.js";
import type { PidStatus } from "./process-identity.js";

export interface RunGcOptions {
  /** Report only; remove nothing. */
  dryRun?: boolean;
  /** Only this entry (used by stop). */
  pid?: number;
}

export interface GcResult {
  pid: number;
  name?: string;
  status: PidStatus;
  /** Paths removed (with dryRun: the paths that would be removed). */
  removedPaths: string[];
  failedPaths: string[];
  /** The registry entry is gone (always false with dryRun). */
  registryRemoved: boolean;
  dryRun?: boolean;
}

function artefacts(e: RegistryEntry): string[] {
  return [...(e.cleanupPaths ?? []), ...(e.bootLogPath ? [e.bootLogPath] : [])];
}

/** Removes one dead entry and what it lists. */
export function collectEntry(e: RegistryEntry, status: PidStatus, dryRun = false, root = registryRoot()): GcResult {
  const removedPaths: string[] = [];
  const failedPaths: string[] = [];
  for (const p of artefacts(e)) {
    if (!existsSync(p)) continue;
    if (dryRun) {
      removedPaths.push(p);
      continue;
    }
    try {
      rmSync(p, { recursive: true, force: true });
      removedPaths.push(p);
    } catch {
      failedPaths.push(p);
    }
  }
  let registryRemoved = false;
  if (!dryRun) {
    if (e.name) releaseName(e.name, e.pid, root);
    registryRemoved = removeEntry(e.pid, root);
  }
  return { pid: e.pid, ...(e.name ? { name: e.name } : {}), status, removedPaths, failedPaths, registryRemoved, ...(dryRun ? { dryRun } : {}) };
}

export function runGc(opts: RunGcOptions = {}): GcResult[] {
  const root = registryRoot();
  const entries = opts.pid !== undefined ? [readEntry(opts.pid, root)].filter((e): e is RegistryEntry => !!e) : readAllEntries(root);
  const results: GcResult[] = [];
  for (const e of entries) {
    const status = entryStatus(e);
    if (status === "alive") continue;
    results.push(collectEntry(e, status, opts.dryRun ?? false, root));
  }
  if (!opts.dryRun) pruneNames(root);
  return results;
}
