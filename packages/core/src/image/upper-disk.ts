/** The per-boot writable layer: a fresh sparse ext4 file, deleted with the VM. */
import { closeSync, openSync, ftruncateSync } from "node:fs";
import { ErrorCode, ProvisionError } from "../errors/index.js";
import { resolveMke2fs } from "../native/resolve.js";
import { runTool } from "../util/run-tool.js";

export function createUpperDisk(file: string, sizeBytes: number): void {
  const mke2fs = resolveMke2fs();
  if (!mke2fs) {
    throw new ProvisionError(ErrorCode.ROOTFS_IMG_TOOL_MISSING, "mke2fs (e2fsprogs) is needed for the VM's writable disk: install e2fsprogs or set STASIS_MKE2FS");
  }
  const fd = openSync(file, "wx", 0o600);
  try {
    ftruncateSync(fd, sizeBytes);
  } finally {
    closeSync(fd);
  }
  const failure = runTool(mke2fs, ["-q", "-F", "-t", "ext4", "-O", "^has_journal", "-m", "0", "-E", "lazy_itable_init=1", "-L", "stasis-upper", file]);
  if (failure) {
    throw new ProvisionError(ErrorCode.PROVISION_INSTALL_HOOK_FAILED, `mke2fs could not format the writable disk ${file}\n${failure.stderr}`);
  }
}
