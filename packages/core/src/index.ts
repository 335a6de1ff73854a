export * from "./errors/index.js";
export { boot, bootEngine, requireKvm } from "./boot/boot.js";
export type { BootOptions } from "./boot/options.js";
export type { VmHandle, VmExit } from "./boot/handle.js";
export { attach, type AttachOptions } from "./boot/attach.js";
export * from "./registry/index.js";
export * from "./agent/index.js";
export type { VmmReport, VmmStats, VmmMilestone, VmmExit, VmmFailure, VmmSnapshotEvent } from "./boot/vmm-report.js";
export * from "./snapshot/index.js";
export * from "./warm/index.js";
// For engines: the launch machinery boot() uses, so a restore starts its VMM the same way.
export { launchVm } from "./boot/launch.js";
export { startWorkload } from "./boot/start-workload.js";
export { hostnameFor, newMachineId, guestIdentity, type GuestIdentity } from "./boot/guest-identity.js";
export type { LaunchPlan, LaunchMode, Readiness, NotReady } from "./boot/launch-plan.js";
export { requestControl, sendControl, ControlTimeoutError } from "./boot/control-client.js";
export { resolveTimeout } from "./boot/options.js";
export { PhaseTimer } from "./log/events.js";
export { checkName, reserveName, releaseName } from "./registry/names.js";
export { autoSizeMemoryMib, validateMemoryMib } from "./boot/memory.js";
export { detectKvm, type KvmKind } from "./host/kvm.js";
export {
  resolveVmmBinary,
  resolveKernel,
  resolveGuestInit,
  resolveGuestAgent,
  resolveBaseRootfs,
  resolveMke2fs,
  resolveMksquashfs,
  nativePackageName,
  type NativePackage,
} from "./native/resolve.js";
export {
  ensureRootfsImage,
  markRootfsImageClean,
  rootfsImgCacheDir,
  type EnsureRootfsImageOptions,
} from "./image/rootfs-cache.js";
export { readImageConfig, warmImageConfigCache, type ImageConfig } from "./image/image-config.js";
export { buildCpio, type CpioEntry } from "./initramfs/cpio.js";
export { buildBootInitramfs, type GuestBootConfig } from "./initramfs/boot-initramfs.js";
export type { LogEvent, OnLog, ChunkLogEvent, PhaseLogEvent, WarmLogEvent } from "./log/events.js";

import { setNativeLoaderForTests } from "./native/resolve.js";
import { CONSOLE_TAIL_BYTES } from "./util/tail-buffer.js";
import { validateMemoryMib } from "./boot/memory.js";
/** Test hooks; not part of the stable API. */
export const _internal = { CONSOLE_TAIL_BYTES, validateMemoryMib, setNativeLoaderForTests };
