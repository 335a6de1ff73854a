import os from "node:os";
import { BootError, ErrorCode } from "../errors/index.js";
import type { KvmKind } from "../host/kvm.js";

const MIB = 1024 * 1024;

/** api.md §1.3: max(512, min(floor(hostMiB / 2), 16384)). */
export function autoSizeMemoryMib(hostBytes: number = os.totalmem()): number {
  return Math.max(512, Math.min(Math.floor(hostBytes / MIB / 2), 16384));
}

/**
 * Under kvm_pvm guest memory setup runs emulated (~10 s per 512 MiB), so
 * the auto-sized default is capped there; an explicit figure always wins.
 */
export const PVM_DEFAULT_MEMORY_MIB = 512;

export function defaultMemoryMib(kvm: KvmKind, hostBytes: number = os.totalmem()): { mib: number; capped: boolean } {
  const auto = autoSizeMemoryMib(hostBytes);
  if (kvm === "pvm" && auto > PVM_DEFAULT_MEMORY_MIB) return { mib: PVM_DEFAULT_MEMORY_MIB, capped: true };
  return { mib: auto, capped: false };
}

/** Largest guest we accept; bigger than any host we run on is a typo. */
export const MAX_MEMORY_MIB = 1024 * 1024;
/** Below this a Linux guest cannot finish booting. */
export const MIN_MEMORY_MIB = 32;

/** A positive integer MiB count, no unit suffix (B13). */
export function validateMemoryMib(mib: unknown): number {
  if (typeof mib !== "number" || !Number.isInteger(mib) || mib < MIN_MEMORY_MIB || mib > MAX_MEMORY_MIB) {
    throw new BootError(
      ErrorCode.BOOT_MEMORY_INVALID,
      `memory must be an integer number of MiB between ${MIN_MEMORY_MIB} and ${MAX_MEMORY_MIB}, got ${JSON.stringify(mib)}`,
    );
  }
  return mib;
}
