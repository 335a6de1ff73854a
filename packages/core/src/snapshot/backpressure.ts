/**
 * The fork gate (api.md §13.3, B128): a fork needs host memory; refuse it
 * up front when the host is already nearly out, instead of letting the
 * kernel's OOM killer pick a victim later.
 */
import { readFile } from "node:fs/promises";
import os from "node:os";
import { BootError, ErrorCode } from "../errors/index.js";

export const DEFAULT_FREE_MEMORY_THRESHOLD = 0.01;

/** Linux MemAvailable in bytes; elsewhere (or unreadable) os.freemem(). */
export async function readHostFreeBytes(): Promise<number> {
  try {
    const m = /^MemAvailable:\s+(\d+)\s+kB$/m.exec(await readFile("/proc/meminfo", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return os.freemem();
}

export function readHostTotalBytes(): number {
  return os.totalmem();
}

export interface CheckForkBackpressureOptions {
  /** Fraction of total memory that must be available. ≤ 0 disables the gate; values > 1 count as 1. */
  threshold: number;
  readFree?: () => Promise<number>;
  totalBytes?: number;
}

const MiB = 1024 * 1024;

/** Rejects with FORK_MEMORY_BACKPRESSURE (retryable) when available < threshold × total. */
export async function checkForkBackpressure(opts: CheckForkBackpressureOptions): Promise<void> {
  if (typeof opts.threshold !== "number" || Number.isNaN(opts.threshold)) {
    throw new TypeError(`freeMemoryThreshold must be a number, got ${JSON.stringify(opts.threshold)}`);
  }
  if (opts.threshold <= 0) return;
  const threshold = Math.min(opts.threshold, 1);
  const total = opts.totalBytes ?? readHostTotalBytes();
  const free = await (opts.readFree ?? readHostFreeBytes)();
  const needed = threshold * total;
  if (free < needed) {
    throw new BootError(
      ErrorCode.FORK_MEMORY_BACKPRESSURE,
      `fork refused: the host has ${Math.floor(free / MiB)} MiB available, below ${threshold} × ${Math.floor(total / MiB)} MiB total; stop a VM or retry later (freeMemoryThreshold: 0 disables this check)`,
      { retryable: true },
    );
  }
}
