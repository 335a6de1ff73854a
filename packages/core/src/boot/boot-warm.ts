/**
 * A warm boot: the cached snapshot of an idle guest of this exact shape is
 * restored by its engine, which then hands the guest this boot's workload
 * and identity instead of a plain thaw. The guest goes on from the point
 * where a cold boot would have handed it over.
 */
import { findEngine } from "../snapshot/engines.js";
import { readMeta } from "../snapshot/meta.js";
import type { OnLog, PhaseTimer } from "../log/events.js";
import type { WarmHit } from "../warm/index.js";
import type { ResolvedBoot } from "./boot-cold.js";
import type { VmHandle } from "./handle.js";
import type { BootOptions } from "./options.js";

/**
 * The caller's onLog, except that the engine's own `restore` phase event
 * becomes part of this boot's (`warm.restore.<phase>`): to the caller this
 * is one boot. Only while booting: later restores (a fork) report as such.
 */
function foldRestorePhases(onLog: OnLog | undefined, phases: PhaseTimer): { onLog: OnLog; booted: () => void } {
  let booting = true;
  return {
    onLog: (e) => {
      if (booting && e.source === "phase" && e.kind === "restore") {
        for (const [name, ms] of e.phases) phases.record(`warm.restore.${name}`, ms);
        return;
      }
      onLog?.(e);
    },
    booted: () => (booting = false),
  };
}

export async function bootWarm(entry: WarmHit, r: ResolvedBoot, opts: BootOptions, phases: PhaseTimer): Promise<VmHandle> {
  const t0 = performance.now();
  const log = foldRestorePhases(opts.onLog, phases);
  const meta = readMeta(entry.dir);
  const engine = findEngine(meta.engine ?? "vmstate", opts.engines);
  const handle = await engine.restore(
    { dir: entry.dir, meta },
    {
      image: r.image,
      ...(r.name !== undefined ? { name: r.name } : {}),
      cwd: r.vmmCwd,
      binary: r.binary,
      timeoutMs: r.timeoutMs,
      ...(opts.vmmEnv !== undefined ? { vmmEnv: opts.vmmEnv } : {}),
      ...(opts.detached !== undefined ? { detached: opts.detached } : {}),
      ...(opts.pdeathsig !== undefined ? { pdeathsig: opts.pdeathsig } : {}),
      ...(opts.onStdout ? { onStdout: opts.onStdout } : {}),
      ...(opts.onStderr ? { onStderr: opts.onStderr } : {}),
      onLog: log.onLog,
      ...(opts.engines ? { engines: opts.engines } : {}),
      cleanupPaths: [],
      warm: { key: entry.key, workload: r.command, ...r.identity },
    },
  );
  log.booted();
  phases.record("warm.restore", performance.now() - t0);
  return handle;
}
