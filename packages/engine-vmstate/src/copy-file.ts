/**
 * Putting large disk files into place cheaply: a hard link where possible
 * (the cached root image is never written, so sharing its inode is safe), a
 * sparse, reflinked copy otherwise (holes stay holes; btrfs/xfs share blocks).
 */
import { spawnSync } from "node:child_process";
import { linkSync } from "node:fs";

/** `cp --sparse=always --reflink=auto src dst`; throws with cp's message on failure. */
export function sparseCopy(src: string, dst: string): void {
  const r = spawnSync("cp", ["--sparse=always", "--reflink=auto", src, dst], { stdio: ["ignore", "ignore", "pipe"] });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr?.toString().trim() || `cp exited with status ${r.status}`);
    throw new Error(`could not copy ${src} to ${dst}: ${why}`);
  }
}

/**
 * Hard link when src and dst share a filesystem and we may link; a sparse
 * copy otherwise, or nothing at all ("none") when `copy` is false.
 */
export function linkOrCopy(src: string, dst: string, opts: { copy?: boolean } = {}): "link" | "copy" | "none" {
  try {
    linkSync(src, dst);
    return "link";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // EXDEV: another filesystem; EPERM: protected_hardlinks (someone else's file); EMLINK: link count.
    if (code !== "EXDEV" && code !== "EPERM" && code !== "EMLINK") throw err;
  }
  if (opts.copy === false) return "none";
  sparseCopy(src, dst);
  return "copy";
}
