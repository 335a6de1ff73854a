/** @stasis/engine-vmstate: snapshots of the whole VM, written and restored by the VMM. */
export { vmstateEngine, createVmstateEngine } from "./engine.js";
export type { RestoreDeps } from "./restore.js";
export { STATE_FILE, MEMORY_FILE, UPPER_DISK_FILE, ROOTFS_FILE } from "./bundle-files.js";
