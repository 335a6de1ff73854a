export { registryRoot, detachedLogRoot, bootSnapshotPath } from "./paths.js";
export { writeBootSnapshot } from "./atomic-write.js";
export { validatePid, type PidStatus, type ExpectedProcess } from "./process-identity.js";
export type { RegistryEntry, PortForward } from "./entry.js";
export { runGc, type GcResult, type RunGcOptions } from "./gc.js";
export { list, findVm, parseTarget, type VmTarget } from "./list.js";
export { stopVm, type StopOptions, type StopResult } from "./stop.js";
