/** Everything boot() decided before a VMM process exists. */
import type { OnLog } from "../log/events.js";
import type { PhaseTimer } from "../log/events.js";
import type { RegistryEntry } from "../registry/entry.js";
import { processStartTicks } from "../registry/process-identity.js";

export interface LaunchPlan {
  binary: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Per-boot files; removed when the VM is gone. */
  runDir: string;
  controlSocket: string;
  /** Host side of the vsock bridge; undefined when the caller preset STASIS_VSOCK. */
  vsockPath?: string;
  name?: string;
  imagePath: string;
  rootImg: string;
  memoryCeilingMib?: number;
  timeoutMs: number | null;
  phases: PhaseTimer;
  onLog?: OnLog;
}

/** The registry entry for a VMM just started from `plan`. */
export function entryFor(plan: LaunchPlan, pid: number, extra: Partial<RegistryEntry> = {}): RegistryEntry {
  const ticks = processStartTicks(pid);
  return {
    pid,
    ...(plan.name !== undefined ? { name: plan.name } : {}),
    socketPath: plan.vsockPath ?? "",
    controlPath: plan.controlSocket,
    imagePath: plan.imagePath,
    cleanupPaths: [plan.runDir],
    vmmExe: plan.binary,
    ...(ticks !== undefined ? { vmmStartTicks: ticks } : {}),
    ...(plan.memoryCeilingMib !== undefined ? { memoryCeilingMib: plan.memoryCeilingMib } : {}),
    portForward: [],
    startedAt: Date.now(),
    ...extra,
  };
}

/** The exec-only view of onLog: console and phase events belong to the booting handle. */
export function execLog(onLog: OnLog | undefined): OnLog | undefined {
  return onLog && ((evt) => (evt.source === "exec-stdout" || evt.source === "exec-stderr") && onLog(evt));
}
