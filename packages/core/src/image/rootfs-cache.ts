/**
 * Rootfs tarball → ext4 image, cached by the tarball's content hash
 * (api.md §6.3). The image is attached read-only; each boot's writes go to
 * its own upper disk, so the cached image is never modified by a guest.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, truncateSync, writeFileSync, lstatSync } from "node:fs";
import path from "node:path";
import { ErrorCode, ProvisionError } from "../errors/index.js";
import { resolveMke2fs } from "../native/resolve.js";
import { cacheRoot } from "../util/paths.js";
import { runTool } from "../util/run-tool.js";
import { sha256FileMemo } from "./content-hash.js";

export interface EnsureRootfsImageOptions {
  cacheDir?: string;
  force?: boolean;
  /** Image size = unpacked bytes × this. Default 2.5. */
  sizeMultiplier?: number;
  /** Lower bound on the image size. Default 2 GiB (sparse: costs nothing). */
  minSizeBytes?: number;
  /** Exact size; overrides the two above. Smaller cached images are sparse-extended. */
  sizeBytes?: number;
  onPhase?: (name: string, ms: number) => void;
}

const GiB = 1024 ** 3;
/** Bumped whenever the image layout changes, so old cache entries are not reused. */
const LAYOUT_VERSION = "v1";

export function rootfsImgCacheDir(): string {
  return path.join(cacheRoot(), "rootfs");
}

function okMarker(img: string): string {
  return `${img}.ok`;
}

/** Recreates the clean marker; no-op if the image is absent; never throws. */
export function markRootfsImageClean(imgPath: string): void {
  try {
    if (existsSync(imgPath)) writeFileSync(okMarker(imgPath), "");
  } catch {
    // best effort by contract
  }
}

function timed<T>(onPhase: EnsureRootfsImageOptions["onPhase"], name: string, fn: () => T): T {
  const t0 = performance.now();
  const v = fn();
  onPhase?.(name, performance.now() - t0);
  return v;
}

function treeBytes(dir: string): number {
  let total = 0;
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      total += st.isFile() ? st.size : 4096;
      if (st.isDirectory()) stack.push(p);
    }
  }
  return total;
}

function growAsNewFile(img: string, sizeBytes: number): void {
  const grown = `${img}.grow-${process.pid}-${randomBytes(4).toString("hex")}`;
  const failure = runTool("cp", ["--sparse=always", "--reflink=auto", img, grown]);
  if (failure) {
    rmSync(grown, { force: true });
    throw new ProvisionError(ErrorCode.PROVISION_INSTALL_HOOK_FAILED, `could not grow the rootfs image ${img}\n${failure.stderr}`);
  }
  truncateSync(grown, sizeBytes);
  renameSync(grown, img);
}

export function ensureRootfsImage(tarPath: string, opts: EnsureRootfsImageOptions = {}): string {
  const tarball = path.resolve(tarPath);
  if (!existsSync(tarball) || !statSync(tarball).isFile()) {
    throw new ProvisionError(ErrorCode.PROVISION_BASE_NOT_FOUND, `rootfs tarball ${tarball} does not exist`);
  }
  const mke2fs = resolveMke2fs();
  if (!mke2fs) {
    throw new ProvisionError(
      ErrorCode.ROOTFS_IMG_TOOL_MISSING,
      "mke2fs (e2fsprogs) is needed to turn a rootfs tarball into a disk image: install e2fsprogs or set STASIS_MKE2FS",
    );
  }
  const cacheDir = opts.cacheDir ?? rootfsImgCacheDir();
  mkdirSync(cacheDir, { recursive: true });
  const sha = timed(opts.onPhase, "sha256", () => sha256FileMemo(tarball, path.join(cacheDir, ".hash-memo")));
  const img = path.join(cacheDir, `${sha}-${LAYOUT_VERSION}.img`);

  if (!opts.force && existsSync(img) && existsSync(okMarker(img))) {
    if (opts.sizeBytes !== undefined && statSync(img).size < opts.sizeBytes) {
      // Grown as a new file, never in place: snapshot bundles hard-link the
      // cached image and must keep the exact one their VM saw.
      timed(opts.onPhase, "sparse-extend", () => growAsNewFile(img, opts.sizeBytes!));
    }
    return img;
  }

  const staging = path.join(cacheDir, `.staging-${process.pid}-${randomBytes(4).toString("hex")}`);
  const tree = path.join(staging, "tree");
  mkdirSync(tree, { recursive: true });
  try {
    const extractFailure = timed(opts.onPhase, "tar-extract", () =>
      runTool("tar", ["-xpf", tarball, "-C", tree, "--numeric-owner"]),
    );
    if (extractFailure) {
      throw new ProvisionError(
        ErrorCode.PROVISION_INSTALL_HOOK_FAILED,
        `could not unpack ${tarball}: is it a tar archive?\n${extractFailure.stderr}`,
      );
    }
    const unpacked = treeBytes(tree);
    const size =
      opts.sizeBytes ?? Math.max(opts.minSizeBytes ?? 2 * GiB, Math.ceil(unpacked * (opts.sizeMultiplier ?? 2.5)));
    const sizeKiB = Math.ceil(Math.max(size, unpacked * 1.2 + 64 * 1024 * 1024) / 1024);
    const stagedImg = path.join(staging, "rootfs.img");
    const mkfsFailure = timed(opts.onPhase, "mke2fs", () =>
      runTool(mke2fs, [
        "-q", "-F", "-t", "ext4",
        "-O", "^has_journal",
        "-E", "root_owner=0:0,lazy_itable_init=1",
        "-L", "stasis-root",
        "-d", tree,
        stagedImg, `${sizeKiB}k`,
      ]),
    );
    if (mkfsFailure) {
      throw new ProvisionError(
        ErrorCode.PROVISION_INSTALL_HOOK_FAILED,
        `mke2fs could not build the rootfs image from ${tarball}\n${mkfsFailure.stderr}`,
      );
    }
    // A concurrent builder of the same tarball may have renamed first; both
    // images are equivalent, and an open descriptor keeps the replaced one alive.
    renameSync(stagedImg, img);
    markRootfsImageClean(img);
    return img;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
