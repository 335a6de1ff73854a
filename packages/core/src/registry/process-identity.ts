/**
 * Telling a live VMM from a process that merely got its pid later
 * (api.md §10.1 validatePid). Linux: /proc/<pid>/exe and the start time in
 * /proc/<pid>/stat.
 */
import { readFileSync, readlinkSync, realpathSync } from "node:fs";

export type PidStatus = "alive" | "dead" | "recycled";

export interface ExpectedProcess {
  /** Absolute path of the VMM executable. */
  vmmExe?: string;
  /** ms since the epoch when the registry entry was made (right after spawn). */
  startedAt?: number;
  /** Exact start time in clock ticks after boot (/proc/<pid>/stat field 22). */
  startTicks?: number;
}

/** USER_HZ: fixed at 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;
/** How far an entry's startedAt may be from the process start (spawn → entry write). */
const START_TOLERANCE_MS = 30_000;

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: split after the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** Clock ticks after boot at which `pid` started, or undefined if unreadable. */
export function processStartTicks(pid: number): number | undefined {
  const f = statFields(pid);
  const ticks = f ? Number(f[19]) : NaN; // field 22 overall; 20th after the name
  return Number.isFinite(ticks) ? ticks : undefined;
}

let bootTimeMs: number | undefined;
function hostBootTimeMs(): number | undefined {
  if (bootTimeMs === undefined) {
    try {
      const m = /^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"));
      bootTimeMs = m ? Number(m[1]) * 1000 : undefined;
    } catch {
      bootTimeMs = undefined;
    }
  }
  return bootTimeMs;
}

/** ms since the epoch at which `pid` started, or undefined. */
export function processStartMs(pid: number): number | undefined {
  const ticks = processStartTicks(pid);
  const boot = hostBootTimeMs();
  return ticks === undefined || boot === undefined ? undefined : boot + (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** The executable of `pid` (without the " (deleted)" suffix), or undefined if unreadable. */
export function processExe(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, "");
  } catch {
    return undefined;
  }
}

/** True while `pid` exists and is not a zombie waiting to be reaped. */
export function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false; // ESRCH: gone; EPERM: someone else's process, not ours to manage
  }
  const state = statFields(pid)?.[0];
  return state !== "Z" && state !== "X";
}

function samePath(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

export function validatePid(pid: number, expected: ExpectedProcess = {}): PidStatus {
  if (!isRunning(pid)) return "dead";
  if (expected.vmmExe !== undefined) {
    const exe = processExe(pid);
    if (exe !== undefined && !samePath(exe, expected.vmmExe)) return "recycled";
  }
  if (expected.startTicks !== undefined) {
    const ticks = processStartTicks(pid);
    if (ticks !== undefined && ticks !== expected.startTicks) return "recycled";
  } else if (expected.startedAt !== undefined) {
    const started = processStartMs(pid);
    if (started !== undefined && Math.abs(started - expected.startedAt) > START_TOLERANCE_MS) return "recycled";
  }
  return "alive";
}

/** Polls until `pid` is no longer running; false if still running at the deadline. */
export async function waitForExit(pid: number, timeoutMs: number, pollMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return true;
}
