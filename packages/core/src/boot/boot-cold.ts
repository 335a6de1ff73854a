/**
 * A cold boot: the rootfs image, a writable disk and an initramfs, then one
 * VMM process. With a vsock bridge the initramfs carries only the machine;
 * once the guest is up and idle the cache may take its snapshot (warm.ts),
 * and then the workload is handed over (`start`). Every file made for this
 * boot lives in one run directory that goes away with the VM on every exit
 * path.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { KvmKind } from "../host/kvm.js";
import { ensureRootfsImage } from "../image/rootfs-cache.js";
import { createUpperDisk } from "../image/upper-disk.js";
import { buildBootInitramfs } from "../initramfs/boot-initramfs.js";
import type { PhaseTimer } from "../log/events.js";
import { releaseName, reserveName } from "../registry/names.js";
import { isRunning } from "../registry/process-identity.js";
import type { SnapshotEngine } from "../snapshot/engine.js";
import type { GuestIdentity } from "./guest-identity.js";
import type { VmHandle } from "./handle.js";
import { launchVm } from "./launch.js";
import type { LaunchPlan } from "./launch-plan.js";
import type { BootOptions, ValidatedCommand } from "./options.js";
import { startWorkload } from "./start-workload.js";
import { fillWarm, type WarmPlan } from "./warm.js";

/** boot()'s options after validation and defaulting. */
export interface ResolvedBoot {
  kvm: KvmKind;
  /** Absolute rootfs tarball. */
  image: string;
  name?: string;
  engine?: SnapshotEngine;
  command: ValidatedCommand;
  memory: { mib: number; capped: boolean };
  cpus: number;
  timeoutMs: number | null;
  vmmCwd: string;
  kernel: string;
  binary: string;
  init: string;
  agent: string;
  upperBytes: number;
  identity: GuestIdentity;
}

export async function bootCold(r: ResolvedBoot, opts: BootOptions, phases: PhaseTimer, warm: WarmPlan | undefined): Promise<VmHandle> {
  const { name, engine } = r;
  if (name !== undefined) reserveName(name);
  let runDir: string | undefined;
  let started = false;
  try {
    const rootImg = ensureRootfsImage(r.image, { onPhase: (n, ms) => phases.record(`rootfs.${n}`, ms) });
    runDir = mkdtempSync(path.join(os.tmpdir(), "stasis-vm-"));
    const upper = path.join(runDir, "upper.img");
    phases.time("upper-disk", () => createUpperDisk(upper, r.upperBytes));
    const vmmEnv = { ...(opts.vmmEnv ?? {}) };
    // A caller-preset STASIS_VSOCK is the caller's bridge: exec is then unavailable to us (B54),
    // and the workload can only travel in the initramfs.
    const vsockPath = vmmEnv.STASIS_VSOCK ? undefined : path.join(runDir, "vsock.sock");
    const machine = { root: "/dev/vda", upper: "/dev/vdb" };
    const guestConfig = vsockPath ? machine : { ...r.command, ...machine };
    const initrd = path.join(runDir, "initramfs.cpio");
    phases.time("initramfs", () => writeFileSync(initrd, buildBootInitramfs(r.init, guestConfig, Date.now(), r.agent)));
    const controlSocket = path.join(runDir, "control.sock");
    const prep = engine?.prepareBoot?.({ runDir, vmmEnv }) ?? { args: [], entry: {} };
    const args = [
      "--kernel", r.kernel,
      "--initrd", initrd,
      "--cpus", String(r.cpus),
      "--disk", `${rootImg}:ro`,
      "--disk", upper,
      "--control", controlSocket,
      "--report-fd", "3",
      ...(vsockPath ? ["--vsock", vsockPath] : []),
      ...(vmmEnv.STASIS_MEMORY ? [] : ["--memory", String(r.memory.mib)]),
      ...prep.args,
      ...(opts.args ?? []),
    ];
    const plan: LaunchPlan = {
      binary: r.binary,
      args,
      cwd: r.vmmCwd,
      env: { ...process.env, ...prep.env, ...vmmEnv },
      runDir,
      controlSocket,
      ...(vsockPath ? { vsockPath } : {}),
      ...(name !== undefined ? { name } : {}),
      imagePath: r.image,
      rootImg,
      rootImgIsCache: true,
      ...(vmmEnv.STASIS_MEMORY ? {} : { memoryCeilingMib: r.memory.mib }),
      cpus: r.cpus,
      timeoutMs: r.timeoutMs,
      readiness: vsockPath ? "workload" : "agent",
      readyTimeoutMs: r.timeoutMs,
      entry: { ...(engine ? { engine: engine.name } : {}), ...prep.entry },
      ...(opts.engines ? { engines: opts.engines } : {}),
      phases,
      onLog: opts.onLog,
    };
    const handle = await launchVm(plan, opts);
    started = true;
    if (vsockPath && isRunning(handle.pid)) {
      if (warm) {
        const t0 = performance.now();
        await fillWarm(handle, warm, opts.onLog);
        phases.record("warm.fill", performance.now() - t0);
      }
      await startWorkload(handle, vsockPath, phases, { workload: r.command, ...r.identity }, {
        detached: opts.detached === true,
        returnEndedVm: true,
      });
    }
    return handle;
  } finally {
    if (!started) {
      if (runDir) rmSync(runDir, { recursive: true, force: true });
      if (name !== undefined) releaseName(name, process.pid);
    }
  }
}
