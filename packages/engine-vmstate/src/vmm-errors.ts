/**
 * A failed restore, in the user's terms: the VMM's `error` report codes
 * (docs/vmstate.md) become stasis codes whose messages say what to do next.
 */
import { BootError, ErrorCode, SnapshotError, type NotReady } from "@stasis/core";

export function restoreFailure(bundleDir: string, r: NotReady): Error {
  const detail = r.vmmError?.message ? `: ${r.vmmError.message}` : "";
  const console = r.consoleTail.trim() ? `\nVMM output:\n${r.consoleTail.trim()}` : "";
  switch (r.vmmError?.code) {
    case "VMM_RESTORE_INVALID":
      return new SnapshotError(
        ErrorCode.SNAPSHOT_BUNDLE_INVALID,
        `the bundle ${bundleDir} cannot be restored: its VM state is missing, truncated, garbled or from a newer stasis${detail}. Take a new snapshot, or restore with the stasis that wrote it`,
      );
    case "VMM_RESTORE_INCOMPATIBLE":
      return new SnapshotError(
        ErrorCode.SNAPSHOT_INCOMPATIBLE,
        `this host cannot run the VM frozen in ${bundleDir}${detail}. Restore it on a host with the CPU features, vCPU support and KVM kind of the one that took it (same architecture; see api.md §5.2)`,
      );
    case "VMM_RESTORE_DISK_MISMATCH":
      return new SnapshotError(
        ErrorCode.SNAPSHOT_IMAGE_MISMATCH,
        `the disks given for ${bundleDir} are not the ones the VM was frozen with${detail}. Keep the bundle's rootfs.img next to its state, or pass image (--image) with the very tarball the source booted from and the rootfs cache entry it built`,
      );
    default:
      return new BootError(
        ErrorCode.BOOT_VMM_FAILED,
        `the VMM could not restore ${bundleDir}: ${r.why}; nothing is left running${console}`,
      );
  }
}
