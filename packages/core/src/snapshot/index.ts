/** Snapshot, restore and fork, engine-agnostic (api.md §4, §5). */
export type {
  SnapshotEngine,
  SnapshotSource,
  SnapshotOptions,
  SnapshotResult,
  EngineSnapshotOptions,
  RestoreOptions,
  EngineRestoreOptions,
  SnapshotBundle,
  EngineBootPrep,
  WarmHandOver,
} from "./engine.js";
export { META_FILE, readMeta, writeMeta, validateMeta, type SnapshotMeta } from "./meta.js";
export { registerEngine, unregisterEngine, findEngine, knownEngines, bundleEngineName } from "./engines.js";
export { checkOutDir, stagingPathFor, removeStaging, commitBundle } from "./out-dir.js";
export {
  checkForkBackpressure,
  readHostFreeBytes,
  readHostTotalBytes,
  DEFAULT_FREE_MEMORY_THRESHOLD,
  type CheckForkBackpressureOptions,
} from "./backpressure.js";
export { snapshotVm, vmEngineName, DEFAULT_SNAPSHOT_TIMEOUT_MS, type SnapshotContext } from "./snapshot-vm.js";
export { restore, restoreBundle } from "./restore.js";
export { forkVm, type ForkOptions } from "./fork.js";
export { sourceFromEntry, registryOwner, type SourceOwner } from "./source.js";
