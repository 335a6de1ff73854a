/**
 * boot() options and their validation. Everything a user can get wrong is
 * checked here, before any VMM starts, and reported with a stable code.
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { BootError, ErrorCode } from "../errors/index.js";
import type { KvmKind } from "../host/kvm.js";
import type { ImageConfig } from "../image/image-config.js";
import type { OnLog } from "../log/events.js";
import type { SnapshotEngine } from "../snapshot/engine.js";
import { defaultMemoryMib, validateMemoryMib } from "./memory.js";

export interface BootOptions {
  /** Rootfs tarball. Needed whenever `cmd` is given. */
  image?: string;
  /** Guest command (argv). Replaces the image's baked cmd. */
  cmd?: string[];
  /** Guest workload env, merged over the image's; caller wins per key. */
  env?: Record<string, string>;
  /** Absolute guest working directory. */
  guestCwd?: string;
  /** Guest RAM in MiB. Default: autoSizeMemoryMib(), capped at 512 under kvm_pvm. */
  memory?: number;
  /** Alias of `memory`. */
  memoryMib?: number;
  /** vCPUs. Default 1. */
  cpus?: number;
  /** Size of the per-boot writable disk. Default max(2 GiB, 2.5 × unpacked image). */
  rootDiskSizeBytes?: number;
  /** VMM binary (absolute or relative to `cwd`). Default: resolveVmmBinary(). */
  binary?: string;
  /** Guest kernel. Default: STASIS_KERNEL, then the native package's. */
  kernel?: string;
  /** Working directory of the VMM process. Default process.cwd(). */
  cwd?: string;
  /** Extra VMM argv. */
  args?: string[];
  /** Extra env for the VMM process only (never reaches the guest). */
  vmmEnv?: Record<string, string>;
  /** Tie the VMM to this process: it dies when this process does. Default true. */
  pdeathsig?: boolean;
  /** Deadline for wait() in ms; null = none. Default 60 s (10 min under kvm_pvm). The VM is killed when it expires. */
  timeoutMs?: number | null;
  /** Guest command stdout bytes, as they arrive. */
  onStdout?: (chunk: Buffer) => void;
  /** Guest console bytes (kernel messages, /init diagnostics, the command's stderr). */
  onStderr?: (chunk: Buffer) => void;
  onLog?: OnLog;
  /** Registry name (path-shaped allowed, unique among live VMs). */
  name?: string;
  /**
   * Return once the guest agent is up; the VM keeps running after this
   * process exits (no parent-death tie). Console goes to
   * `<detachedLogRoot()>/<pid>.boot.log`.
   */
  detached?: boolean;
  /**
   * Snapshot engine of this VM (api.md §5.1). Default "vmstate" on x64 Linux
   * when it is installed; a name no known engine has → SNAPSHOT_ENGINE_NOT_INSTALLED.
   */
  snapshotEngine?: string;
  /** Engines for this VM's snapshot/fork, before the registered ones. */
  engines?: readonly SnapshotEngine[];
  /**
   * Serve the boot from the warm cache: restore the cached snapshot of an
   * idle guest of the same shape, filling it on the first boot
   * (docs/warm-boot.md). Default true; false (CLI `--cold`, or env
   * STASIS_WARM=0) always boots cold and leaves the cache alone.
   */
  warm?: boolean;
}

export interface ValidatedCommand {
  cmd: string[];
  env: Record<string, string>;
  cwd: string;
}

const ENV_KEY = /^[^=\0]+$/;

function checkEnv(env: unknown): Record<string, string> {
  if (env === undefined) return {};
  if (env === null || typeof env !== "object" || Array.isArray(env)) {
    throw new BootError(ErrorCode.BOOT_ENV_INVALID, "env must be an object of string values");
  }
  for (const [k, v] of Object.entries(env as Record<string, unknown>)) {
    if (!ENV_KEY.test(k)) {
      throw new BootError(ErrorCode.BOOT_ENV_INVALID, `env key ${JSON.stringify(k)} is invalid: it must be non-empty without "=" or NUL`);
    }
    if (typeof v !== "string" || v.includes("\0")) {
      throw new BootError(ErrorCode.BOOT_ENV_INVALID, `env ${k} must be a string without NUL bytes`);
    }
  }
  return { ...(env as Record<string, string>) };
}

export function checkGuestCwd(cwd: unknown): string {
  if (typeof cwd !== "string" || !cwd.startsWith("/") || cwd.includes("\0")) {
    throw new BootError(
      ErrorCode.BOOT_CWD_INVALID,
      `guest working directory must be an absolute path without NUL bytes, got ${JSON.stringify(cwd)}`,
    );
  }
  return cwd;
}

function checkCmd(cmd: unknown): string[] | undefined {
  if (cmd === undefined) return undefined;
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((a) => typeof a === "string")) {
    throw new BootError(ErrorCode.BOOT_CMD_MISSING, "cmd must be a non-empty array of strings, e.g. [\"/bin/sh\", \"-c\", \"echo hi\"]");
  }
  if (cmd[0] === "" || cmd.some((a: string) => a.includes("\0"))) {
    throw new BootError(ErrorCode.BOOT_CMD_MISSING, "cmd must name a program and its arguments must not contain NUL bytes");
  }
  return [...cmd];
}

/** B3/B8: image presence and the cmd/image pairing. Returns the absolute image path. */
export function checkImage(opts: BootOptions): string {
  if (opts.image === undefined) {
    if (opts.cmd !== undefined) {
      throw new BootError(
        ErrorCode.BOOT_CMD_WITHOUT_IMAGE,
        "cmd was given without an image: pass `image` (a rootfs tarball) together with `cmd`",
      );
    }
    throw new BootError(ErrorCode.BOOT_CMD_MISSING, "nothing to boot: pass `image` (a rootfs tarball) and `cmd`");
  }
  if (typeof opts.image !== "string" || opts.image === "") {
    throw new BootError(ErrorCode.BOOT_IMAGE_NOT_FOUND, "image must be a path to a rootfs tarball");
  }
  const abs = path.resolve(opts.image);
  if (!existsSync(abs) || !statSync(abs).isFile()) {
    throw new BootError(ErrorCode.BOOT_IMAGE_NOT_FOUND, `image ${abs} does not exist (expected a rootfs .tar or .tar.gz)`);
  }
  return abs;
}

/** B4/B6/B7/B9: the guest command after merging the image's baked config. */
export function resolveCommand(opts: BootOptions, baked: ImageConfig | null): ValidatedCommand {
  const cmd = checkCmd(opts.cmd) ?? baked?.cmd;
  if (!cmd) {
    throw new BootError(
      ErrorCode.BOOT_CMD_MISSING,
      "no command to run: the image bakes none, so pass `cmd` (CLI: stasis boot <image> -- <cmd…>)",
    );
  }
  const env = { ...(baked?.env ?? {}), ...checkEnv(opts.env) };
  const cwd = opts.guestCwd !== undefined ? checkGuestCwd(opts.guestCwd) : baked?.cwd ? checkGuestCwd(baked.cwd) : "/";
  return { cmd, env, cwd };
}

export const MAX_CPUS_PVM = 2;

export function resolveCpus(cpus: unknown, kvm: KvmKind): number {
  if (cpus === undefined) return 1;
  const max = kvm === "pvm" ? MAX_CPUS_PVM : 64;
  if (typeof cpus !== "number" || !Number.isInteger(cpus) || cpus < 1 || cpus > max) {
    throw new BootError(ErrorCode.BOOT_CPUS_INVALID, `cpus must be an integer from 1 to ${max} on this host, got ${JSON.stringify(cpus)}`);
  }
  return cpus;
}

export function resolveMemory(opts: BootOptions, kvm: KvmKind): { mib: number; capped: boolean } {
  const explicit = opts.memory ?? opts.memoryMib;
  if (explicit !== undefined) return { mib: validateMemoryMib(explicit), capped: false };
  return defaultMemoryMib(kvm);
}

export function resolveTimeout(timeoutMs: unknown, kvm: KvmKind): number | null {
  if (timeoutMs === null) return null;
  if (timeoutMs === undefined) return kvm === "pvm" ? 10 * 60_000 : 60_000;
  if (typeof timeoutMs !== "number" || !(timeoutMs > 0)) {
    throw new BootError(ErrorCode.BOOT_TIMEOUT, `timeoutMs must be a positive number of milliseconds or null, got ${JSON.stringify(timeoutMs)}`);
  }
  return timeoutMs;
}
