/**
 * Restore options a vmstate bundle cannot honour. The frozen guest already
 * has its RAM, vCPUs, kernel, processes and disks; rather than ignore such
 * an option silently, say why and what to do instead.
 */
import { BootError, ErrorCode, type EngineRestoreOptions, type SnapshotMeta } from "@stasis/core";

function unsupported(option: string, why: string): BootError {
  return new BootError(ErrorCode.BOOT_OPTION_UNSUPPORTED, `${option} cannot be applied to a vmstate restore: ${why}`);
}

export function checkRestoreOptions(opts: EngineRestoreOptions, meta: SnapshotMeta): void {
  const memory = opts.memory ?? opts.memoryMib;
  if (memory !== undefined && memory !== meta.memoryMib) {
    throw unsupported(
      "memory",
      `the guest keeps the RAM size it was frozen with${meta.memoryMib !== undefined ? ` (${meta.memoryMib} MiB)` : ""}; leave memory out`,
    );
  }
  if (opts.cpus !== undefined && opts.cpus !== meta.cpus) {
    throw unsupported("cpus", `the guest keeps the vCPUs it was frozen with${meta.cpus !== undefined ? ` (${meta.cpus})` : ""}; leave cpus out`);
  }
  if (opts.env !== undefined && Object.keys(opts.env).length > 0) {
    throw unsupported("env", "the guest's processes keep the environment they had when frozen; pass env to exec() instead");
  }
  if (opts.guestCwd !== undefined) {
    throw unsupported("guestCwd", "the guest's processes keep their working directories; pass cwd to exec() instead");
  }
  if (opts.mount !== undefined) {
    throw unsupported("mount", "a frozen guest cannot be given a disk it never had; boot a new VM with the mount instead");
  }
  if (opts.kernel !== undefined) {
    throw unsupported("kernel", "the running kernel is part of the frozen memory");
  }
  if (opts.rootDiskSizeBytes !== undefined) {
    throw unsupported("rootDiskSizeBytes", "the writable disk is the bundle's, at the size it had");
  }
}
