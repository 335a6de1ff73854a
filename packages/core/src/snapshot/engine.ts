/**
 * The snapshot engine contract (architecture.md §5): a name, how to freeze
 * a running VM into a bundle directory, how to thaw a bundle into a running
 * VM, how to recognise its own bundles. Core defines it and never imports
 * an implementation; @stasis/runtime registers the built-in ones and a
 * third party passes its own (`engines: [...]` or registerEngine()).
 */
import type { GuestWorkload } from "../agent/start.js";
import type { VmHandle } from "../boot/handle.js";
import type { BootOptions } from "../boot/options.js";
import type { OnLog } from "../log/events.js";
import type { RegistryEntry } from "../registry/entry.js";
import type { SnapshotMeta } from "./meta.js";

/** A running VM as core knows it: what an engine needs to snapshot it. */
export interface SnapshotSource {
  readonly pid: number;
  readonly name?: string;
  /** Its registry entry as it stands (lineage, engine, paths, sizes). */
  readonly entry: RegistryEntry;
  /** The VMM's control socket. */
  readonly controlPath?: string;
  /** The rootfs tarball the VM came from (for a restored VM: its source's). */
  readonly imagePath?: string;
  /** The read-only root disk image the VMM has open. */
  readonly rootImg?: string;
  /** The VM's own per-boot directory. */
  readonly runDir?: string;
  /**
   * Resolves once the VMM has exited and its registry entry, name and run
   * directory are gone; rejects if that has not happened within `timeoutMs`.
   */
  awaitGone(timeoutMs: number): Promise<void>;
  /** SIGKILLs the VMM; resolves once it is gone and cleaned up. */
  kill(): Promise<void>;
}

/** `vm.snapshot(opts)` (api.md §4.2). */
export interface SnapshotOptions {
  /** Bundle directory; created if absent; must be absent or empty. */
  outDir: string;
  /** Keep the source running (default false: it exits once the bundle is written). */
  leaveRunning?: boolean;
  /** Do not preserve established TCP connections in the bundle. */
  tcpClose?: boolean;
  /** Cap on the dump (and the source's exit when destructive). Default 90000; expiry SIGKILLs the VMM. */
  timeoutMs?: number;
  /** Phase timings (`kind: "snapshot"`), in addition to the boot's onLog. */
  onLog?: OnLog;
  /** criu: guest command that performs the dump. */
  dumpCmd?: string;
  /** Report the target, bundle dir, engine and whether the source would stop; write nothing. */
  dryRun?: boolean;
  /** Engines to consider before the registered ones. */
  engines?: readonly SnapshotEngine[];
  /** A fork's temporary bundle (see EngineSnapshotOptions.scratch). */
  scratch?: boolean;
}

export interface SnapshotResult {
  /** The engine that wrote the bundle (= meta.engine). */
  engine: string;
  /** Absolute bundle path. */
  snapDir: string;
  /** criu only. */
  imgDir?: string;
  /** vmstate only: `<snapDir>/state.vmstate`. */
  vmstatePath?: string;
  /** From the call to the source's exit (destructive) or to the bundle's completion. */
  elapsedMs: number;
  /** Guest console captured during the dump ("" when the engine captures none). */
  consoleLog: string;
  /** ms epoch recorded in meta.json. */
  snappedAt: number;
  /** The source was stopped by the snapshot. */
  destructive: boolean;
  sourcePid: number;
  sourceName?: string;
  /** Guest RAM bytes written (holes excluded), when the engine knows. */
  memoryBytes?: number;
  /** The engine's own step timings in ms (vmstate: the VMM's reply). */
  timings?: Record<string, number>;
  /** Nothing was written (dryRun). */
  dryRun?: boolean;
}

/** What an engine is asked to do; core has validated and defaulted everything here. */
export interface EngineSnapshotOptions {
  /** Absolute; absent or an empty directory. */
  outDir: string;
  leaveRunning: boolean;
  tcpClose: boolean;
  timeoutMs: number;
  dumpCmd?: string;
  onLog?: OnLog;
  /**
   * The bundle only lives as long as one fork on this host: it need not
   * carry what another host would need (vmstate: the root image is then
   * referenced by path when it cannot be hard-linked, never copied).
   */
  scratch?: boolean;
}

/** `restore(opts)` (api.md §4.4). */
export interface RestoreOptions extends Omit<BootOptions, "image" | "cmd" | "name" | "snapshotEngine" | "warm"> {
  /** The bundle directory. */
  snapDir: string;
  /** Rootfs tarball when the bundle carries no root image. Default meta.sourceImage. */
  image?: string;
  /** Registry name. Default `<meta.sourceName>/<new VMM pid>`; unnamed when the source was. */
  name?: string;
  /** Copy-once mount for the restored VM (not every engine can add one). */
  mount?: { host: string; guest: string };
}

/** A bundle as core found it. */
export interface SnapshotBundle {
  /** Absolute bundle directory. */
  dir: string;
  meta: SnapshotMeta;
}

export interface EngineRestoreOptions extends Omit<RestoreOptions, "snapDir"> {
  /** Paths to delete once the restored VM is gone (a fork's temporary bundle). */
  cleanupPaths: string[];
  /**
   * A warm boot (docs/warm-boot.md): the bundle is a cached idle guest.
   * Hand it this workload and identity (agent `start`) instead of a thaw,
   * and register the VM as booted from the cache entry, not restored.
   */
  warm?: WarmHandOver;
}

export interface WarmHandOver {
  /** The cache entry's key (recorded as RegistryEntry.warmKey). */
  key: string;
  workload: GuestWorkload;
  hostname: string;
  machineId: string;
}

/** What a boot with this engine adds to the VMM's command line and environment and to the registry entry. */
export interface EngineBootPrep {
  args: string[];
  /** Added under the caller's vmmEnv (the caller's values win). */
  env?: Record<string, string>;
  entry: Partial<RegistryEntry>;
}

export interface SnapshotEngine {
  /** Recorded as meta.engine and RegistryEntry.engine. */
  readonly name: string;
  /** Whether `bundleDir` holds this engine's bundle, judged by its contents. */
  recognises(bundleDir: string): boolean;
  snapshot(vm: SnapshotSource, opts: EngineSnapshotOptions): Promise<SnapshotResult>;
  restore(bundle: SnapshotBundle, opts: EngineRestoreOptions): Promise<VmHandle>;
  /** Called by boot() for VMs that will use this engine; `runDir` is the VM's own directory, `vmmEnv` the caller's. */
  prepareBoot?(ctx: { runDir: string; vmmEnv: Readonly<Record<string, string>> }): EngineBootPrep;
}
