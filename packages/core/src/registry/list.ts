/** Live VMs, and finding one by pid or name (api.md §10.1 list, cli.md §1 targets). */
import { ErrorCode, RegistryError } from "../errors/index.js";
import { entryStatus, readAllEntries, type RegistryEntry } from "./entry.js";
import { collectEntry } from "./gc.js";
import { pruneNames } from "./names.js";
import { registryRoot } from "./paths.js";

/**
 * Entries whose VMM is alive. Dead and recycled entries are collected on
 * the way (with their artefacts, so nothing is orphaned), as are stale
 * name reservations.
 */
export function list(): RegistryEntry[] {
  const root = registryRoot();
  const live: RegistryEntry[] = [];
  for (const e of readAllEntries(root)) {
    const status = entryStatus(e);
    if (status === "alive") live.push(e);
    else collectEntry(e, status, false, root);
  }
  pruneNames(root);
  return live;
}

export type VmTarget = { pid: number; name?: undefined } | { name: string; pid?: undefined };

/** cli.md §1: all digits ⇒ a pid, anything else ⇒ a name. */
export function parseTarget(target: string): VmTarget {
  return /^\d+$/.test(target) ? { pid: Number(target) } : { name: target };
}

function describe(t: { pid?: number; name?: string }): string {
  return t.pid !== undefined ? `pid ${t.pid}` : `name ${JSON.stringify(t.name)}`;
}

/** The live entry for a pid or name; REGISTRY_VM_NOT_FOUND otherwise. */
export function findVm(target: { pid?: number; name?: string }): RegistryEntry {
  if ((target.pid === undefined) === (target.name === undefined)) {
    throw new RegistryError(ErrorCode.REGISTRY_VM_NOT_FOUND, "give exactly one of pid or name to find a VM");
  }
  const hit = list().find((e) => (target.pid !== undefined ? e.pid === target.pid : e.name === target.name));
  if (!hit) {
    throw new RegistryError(
      ErrorCode.REGISTRY_VM_NOT_FOUND,
      `no running VM with ${describe(target)}: \`stasis ls\` lists the running ones`,
    );
  }
  return hit;
}
