/** Everything boot() or an engine's restore decided before a VMM process exists. */
import type { OnLog } from "../log/events.js";
import type { PhaseTimer } from "../log/events.js";
import { writeEntry, type RegistryEntry } from "../registry/entry.js";
import { pinNameToVmm, reserveName } from "../registry/names.js";
import { processStartTicks } from "../registry/process-identity.js";
import type { SnapshotEngine } from "../snapshot/engine.js";
import type { VmmFailure } from "./vmm-report.js";

/**
 * When a VM counts as up: `agent` = milestone 4, the guest agent listens (a
 * cold boot whose workload is in the initramfs); `workload` = milestones 4
 * and 5, the agent listens and /init waits for the workload (a cold boot
 * that hands it over with `start`); `restored` = the VMM's `restored`
 * report event, the vCPUs run again (a vmstate restore: the agent was
 * already listening when frozen).
 */
export type Readiness = "agent" | "workload" | "restored";

/** Why a VM never became ready. */
export interface NotReady {
  why: string;
  /** The VMM's own `error` report event, if it sent one. */
  vmmError?: VmmFailure;
  /** The last console output (detached VMs), for the message. */
  consoleTail: string;
}

export interface LaunchPlan {
  binary: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Per-VM files; removed when the VM is gone. */
  runDir: string;
  controlSocket: string;
  /** Host side of the vsock bridge; undefined when the caller preset STASIS_VSOCK. */
  vsockPath?: string;
  /** Explicit name, already reserved by the caller. */
  name?: string;
  /** A name derived from the new VMM's pid (restore's `<source>/<pid>`); reserved after spawn. */
  autoName?: (pid: number) => string | undefined;
  imagePath?: string;
  /** The read-only root disk image given to the VMM. */
  rootImg: string;
  /** rootImg is a rootfs cache entry: mark it clean after an orderly exit (never a bundle's file). */
  rootImgIsCache: boolean;
  memoryCeilingMib?: number;
  cpus?: number;
  /** Deadline for wait(); null = none. */
  timeoutMs: number | null;
  /**
   * Detached VMs always wait for readiness; foreground ones for `restored`
   * and `workload` (a foreground VM that ends first is still returned: its
   * wait() tells how it ended).
   */
  readiness: Readiness;
  readyTimeoutMs: number | null;
  /** Builds the error for a VM that never became ready (default BOOT_DETACHED_READINESS_FAILED). */
  notReady?: (r: NotReady) => Error;
  /** Extra registry fields (lineage, engine, vmstate path). */
  entry?: Partial<RegistryEntry>;
  /** Removed with the VM besides runDir (a fork's temporary bundle). */
  cleanupPaths?: string[];
  /** Engines the handle may use for snapshot/fork. */
  engines?: readonly SnapshotEngine[];
  phases: PhaseTimer;
  onLog?: OnLog;
}

/** How to launch: the boot-shaped options' fields (BootOptions and RestoreOptions pass themselves). */
export interface LaunchMode {
  detached?: boolean;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Foreground only: tie the VMM to this process (default true). */
  pdeathsig?: boolean;
}

/** Every path that goes away with the VM. */
export function cleanupPathsOf(plan: LaunchPlan): string[] {
  return [plan.runDir, ...(plan.cleanupPaths ?? [])];
}

/** The registry entry for a VMM just started from `plan`. */
export function entryFor(plan: LaunchPlan, pid: number, name: string | undefined, extra: Partial<RegistryEntry> = {}): RegistryEntry {
  const ticks = processStartTicks(pid);
  return {
    pid,
    ...(name !== undefined ? { name } : {}),
    socketPath: plan.vsockPath ?? "",
    controlPath: plan.controlSocket,
    ...(plan.imagePath !== undefined ? { imagePath: plan.imagePath } : {}),
    rootImgPath: plan.rootImg,
    runDir: plan.runDir,
    cleanupPaths: cleanupPathsOf(plan),
    vmmExe: plan.binary,
    ...(ticks !== undefined ? { vmmStartTicks: ticks } : {}),
    ...(plan.memoryCeilingMib !== undefined ? { memoryCeilingMib: plan.memoryCeilingMib } : {}),
    ...(plan.cpus !== undefined ? { cpus: plan.cpus } : {}),
    portForward: [],
    startedAt: Date.now(),
    ...plan.entry,
    ...extra,
  };
}

/**
 * Registers a VMM that was just spawned: takes its auto-name if it has one
 * (REGISTRY_NAME_IN_USE if a live VM holds it), writes the entry and hands
 * the name to the VMM. The caller kills the VMM if this throws.
 */
export function registerSpawned(plan: LaunchPlan, pid: number, extra: Partial<RegistryEntry> = {}): RegistryEntry {
  const auto = plan.name === undefined ? plan.autoName?.(pid) : undefined;
  if (auto !== undefined) reserveName(auto);
  const name = plan.name ?? auto;
  const entry = entryFor(plan, pid, name, extra);
  writeEntry(entry);
  if (name !== undefined) pinNameToVmm(name, { pid, vmmExe: plan.binary, startTicks: entry.vmmStartTicks });
  return entry;
}

/** The exec-only view of onLog: console and phase events belong to the booting handle. */
export function execLog(onLog: OnLog | undefined): OnLog | undefined {
  return onLog && ((evt) => (evt.source === "exec-stdout" || evt.source === "exec-stderr") && onLog(evt));
}
