/**
 * Finds the binaries stasis runs. Order for each: an explicit option, then
 * an environment override, then the platform's native package resolved
 * with require.resolve. Nothing here hard-codes an install path.
 */
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { BootError, ErrorCode } from "../errors/index.js";

/** What a `@stasis/native-<arch>-<os>` package exports (absolute paths). */
export interface NativePackage {
  binary: string;
  kernel?: string;
  init?: string;
  agent?: string;
  baseRootfs?: string;
  mke2fs?: string;
  mksquashfs?: string;
}

export function nativePackageName(arch = process.arch, platform = process.platform): string {
  return `@stasis/native-${arch}-${platform}`;
}

type Loader = (name: string) => unknown;
const defaultLoader: Loader = (name) => createRequire(import.meta.url)(name);
let loader: Loader = defaultLoader;

/** Test hook: replace how the native package is loaded. */
export function setNativeLoaderForTests(next: Loader | undefined): void {
  loader = next ?? defaultLoader;
}

/** Loads the native package, or undefined when it is not installed. */
export function loadNativePackage(): Partial<NativePackage> | undefined {
  const name = nativePackageName();
  try {
    return loader(name) as Partial<NativePackage>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "MODULE_NOT_FOUND" || code === "ERR_MODULE_NOT_FOUND") return undefined;
    throw new BootError(ErrorCode.BOOT_VMM_PACKAGE_BROKEN, `${name} is installed but fails to load; reinstall it`, {
      cause: err,
    });
  }
}

function isExecutableFile(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function missingPackage(): BootError {
  const name = nativePackageName();
  return new BootError(
    ErrorCode.BOOT_VMM_MISSING,
    `no VMM for ${process.platform}/${process.arch}: install ${name} (or set STASIS_VMM to a stasis-vmm binary)`,
  );
}

/** api.md §16. Throws BOOT_VMM_MISSING / BOOT_VMM_PACKAGE_BROKEN. */
export function resolveVmmBinary(explicit?: string, cwd = process.cwd()): string {
  if (explicit !== undefined) {
    const abs = path.resolve(cwd, explicit);
    if (!isExecutableFile(abs)) {
      throw new BootError(ErrorCode.BOOT_VMM_MISSING, `VMM binary ${abs} does not exist or is not executable`);
    }
    return abs;
  }
  const fromEnv = process.env.STASIS_VMM;
  if (fromEnv) {
    if (!isExecutableFile(fromEnv)) {
      throw new BootError(ErrorCode.BOOT_VMM_MISSING, `STASIS_VMM=${fromEnv} does not exist or is not executable`);
    }
    return path.resolve(fromEnv);
  }
  const pkg = loadNativePackage();
  if (!pkg) throw missingPackage();
  if (typeof pkg.binary !== "string" || !isExecutableFile(pkg.binary)) {
    throw new BootError(
      ErrorCode.BOOT_VMM_PACKAGE_BROKEN,
      `${nativePackageName()} has no usable VMM binary${typeof pkg.binary === "string" ? ` at ${pkg.binary}` : ""}; rebuild it with \`bash tools/setup\` or reinstall the package`,
    );
  }
  return pkg.binary;
}

/** Guest kernel: explicit → STASIS_KERNEL → native package. */
export function resolveKernel(explicit?: string, cwd = process.cwd()): string {
  const candidate = explicit !== undefined ? path.resolve(cwd, explicit) : process.env.STASIS_KERNEL || undefined;
  if (candidate !== undefined) {
    if (!existsSync(candidate)) {
      throw new BootError(ErrorCode.BOOT_KERNEL_NOT_FOUND, `guest kernel ${candidate} does not exist`);
    }
    return candidate;
  }
  const pkg = loadNativePackage();
  if (!pkg) throw missingPackage();
  if (typeof pkg.kernel !== "string" || !existsSync(pkg.kernel)) {
    throw new BootError(
      ErrorCode.BOOT_KERNEL_NOT_FOUND,
      `${nativePackageName()} ships no guest kernel${pkg.kernel ? ` at ${pkg.kernel}` : ""}; build it with \`bash tools/setup\` or pass a kernel path`,
    );
  }
  return pkg.kernel;
}

/** Guest /init: explicit → STASIS_INIT → native package. */
export function resolveGuestInit(explicit?: string): string {
  const candidate = explicit ?? (process.env.STASIS_INIT || undefined) ?? loadNativePackage()?.init;
  if (typeof candidate !== "string" || !existsSync(candidate)) {
    throw new BootError(
      ErrorCode.BOOT_PACK_FAILED,
      `guest /init binary not found${candidate ? ` at ${candidate}` : ""}; build it with \`bash tools/setup\``,
    );
  }
  return candidate;
}

/** Guest agent: explicit → STASIS_AGENT → native package. */
export function resolveGuestAgent(explicit?: string): string {
  const candidate = explicit ?? (process.env.STASIS_AGENT || undefined) ?? loadNativePackage()?.agent;
  if (typeof candidate !== "string" || !existsSync(candidate)) {
    throw new BootError(
      ErrorCode.BOOT_PACK_FAILED,
      `guest agent binary not found${candidate ? ` at ${candidate}` : ""}; build it with \`bash tools/setup\``,
    );
  }
  return candidate;
}

/** The tiny base rootfs tarball booted when no image is given. */
export function resolveBaseRootfs(explicit?: string): string {
  const candidate = explicit ?? (process.env.STASIS_BASE_ROOTFS || undefined) ?? loadNativePackage()?.baseRootfs;
  if (typeof candidate !== "string" || !existsSync(candidate)) {
    throw new BootError(
      ErrorCode.BOOT_IMAGE_NOT_FOUND,
      `the default base rootfs is missing${candidate ? ` (${candidate})` : ""}; build it with \`bash tools/setup\` or pass an image`,
    );
  }
  return candidate;
}

function searchPath(names: string[]): string | undefined {
  const dirs = (process.env.PATH ?? "").split(path.delimiter).concat(["/usr/sbin", "/sbin"]);
  for (const dir of dirs) {
    if (!dir) continue;
    for (const name of names) {
      const p = path.join(dir, name);
      if (isExecutableFile(p)) return p;
    }
  }
  return undefined;
}

function resolveTool(envVar: string, exported: keyof NativePackage, names: string[]): string | undefined {
  const fromEnv = process.env[envVar];
  if (fromEnv && isExecutableFile(fromEnv)) return fromEnv;
  try {
    const p = loadNativePackage()?.[exported];
    if (typeof p === "string" && isExecutableFile(p)) return p;
  } catch {
    // a broken native package must not stop the fallback to the system tool
  }
  return searchPath(names);
}

/** env STASIS_MKE2FS → native package → PATH. Never throws (B143). */
export function resolveMke2fs(): string | undefined {
  return resolveTool("STASIS_MKE2FS", "mke2fs", ["mke2fs", "mkfs.ext4"]);
}

/** env STASIS_MKSQUASHFS → native package → PATH. Never throws (B143). */
export function resolveMksquashfs(): string | undefined {
  return resolveTool("STASIS_MKSQUASHFS", "mksquashfs", ["mksquashfs"]);
}
