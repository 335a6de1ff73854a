/** One registry entry: `<registryRoot>/<pid>/meta.json` (api.md §10.2). */
import { readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { writeFileAtomic } from "./atomic-write.js";
import { entryDir, registryRoot } from "./paths.js";
import { validatePid, type PidStatus } from "./process-identity.js";

export interface PortForward {
  hostPort: number;
  guestPort: number;
  hostAddr?: string;
}

export interface RegistryEntry {
  /** VMM pid; the primary key. */
  pid: number;
  name?: string;
  /** Host socket of the vsock bridge the guest agent is reached through. */
  socketPath: string;
  /** The VMM's JSON-lines control socket (ours). */
  controlPath?: string;
  imagePath?: string;
  diskPath?: string;
  /** vmstate VMs: where SIGUSR1 makes the VMM write a snapshot (its `--snapshot-path`). */
  vmstatePath?: string;
  /** Snapshot engine of this VM (ours; api.md §5.1 leaves the choice open). */
  engine?: string;
  /** Absolute bundle dir the VM was restored or forked from. */
  forkedFrom?: string;
  /** Key of the warm cache entry the VM was booted from (ours; docs/warm-boot.md). */
  warmKey?: string;
  /** The read-only root disk image the VMM has open (ours; a snapshot links it into the bundle). */
  rootImgPath?: string;
  /** The VM's own per-boot directory (ours; also listed in cleanupPaths). */
  runDir?: string;
  /** vCPUs (ours). */
  cpus?: number;
  bootLogPath?: string;
  cleanupPaths?: string[];
  vmmExe?: string;
  /** Exact VMM start time in clock ticks after host boot (ours; recycling check). */
  vmmStartTicks?: number;
  gvproxyPid?: number;
  gvproxyExe?: string;
  portForward?: PortForward[];
  memoryCeilingMib?: number;
  statsPath?: string;
  lazyPagesTotal?: number;
  mountDisk?: { guest: string; lowerPath: string; upperPath: string };
  liveMounts?: { guest: string; host: string; mode: "ro" | "rw" }[];
  /** Booted with `detached: true` (or detached later). */
  detached?: boolean;
  /** ms since the epoch when the entry was made. */
  startedAt: number;
}

const META = "meta.json";

export function writeEntry(entry: RegistryEntry, root = registryRoot()): void {
  writeFileAtomic(path.join(entryDir(entry.pid, root), META), `${JSON.stringify(entry, null, 2)}\n`);
}

function isEntry(v: unknown): v is RegistryEntry {
  const e = v as RegistryEntry;
  return (
    typeof e === "object" && e !== null &&
    Number.isInteger(e.pid) && e.pid > 0 &&
    typeof e.socketPath === "string" &&
    typeof e.startedAt === "number" &&
    (e.name === undefined || typeof e.name === "string") &&
    (e.cleanupPaths === undefined || (Array.isArray(e.cleanupPaths) && e.cleanupPaths.every((p) => typeof p === "string")))
  );
}

/** The entry for `pid`, or undefined when there is none (or it is unreadable). */
export function readEntry(pid: number, root = registryRoot()): RegistryEntry | undefined {
  try {
    const v: unknown = JSON.parse(readFileSync(path.join(entryDir(pid, root), META), "utf8"));
    return isEntry(v) && v.pid === pid ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Every readable entry, live or not, in pid order. */
export function readAllEntries(root = registryRoot()): RegistryEntry[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  return names
    .filter((n) => /^[1-9]\d*$/.test(n))
    .map((n) => readEntry(Number(n), root))
    .filter((e): e is RegistryEntry => e !== undefined)
    .sort((a, b) => a.pid - b.pid);
}

export function removeEntry(pid: number, root = registryRoot()): boolean {
  try {
    rmSync(entryDir(pid, root), { recursive: true, force: true });
    return true;
  } catch {
    return false;
  }
}

export function entryStatus(e: RegistryEntry): PidStatus {
  return validatePid(e.pid, { vmmExe: e.vmmExe, startedAt: e.startedAt, startTicks: e.vmmStartTicks });
}
