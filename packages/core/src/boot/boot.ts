/**
 * boot(): options → launch plan → one VMM process → VmHandle.
 * Every check that can fail on user input runs before the VMM starts, and
 * every file made for this boot lives in one run directory that goes away
 * with the VM on every exit path.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { BootError, ErrorCode } from "../errors/index.js";
import { detectKvm, type KvmKind } from "../host/kvm.js";
import { readImageConfig } from "../image/image-config.js";
import { ensureRootfsImage } from "../image/rootfs-cache.js";
import { createUpperDisk } from "../image/upper-disk.js";
import { buildBootInitramfs } from "../initramfs/boot-initramfs.js";
import { PhaseTimer } from "../log/events.js";
import { resolveGuestAgent, resolveGuestInit, resolveKernel, resolveVmmBinary } from "../native/resolve.js";
import { checkName, releaseName, reserveName } from "../registry/names.js";
import type { SnapshotEngine } from "../snapshot/engine.js";
import { findEngine, knownEngines } from "../snapshot/engines.js";
import type { VmHandle } from "./handle.js";
import { launchVm } from "./launch.js";
import type { LaunchPlan } from "./launch-plan.js";
import { PVM_DEFAULT_MEMORY_MIB } from "./memory.js";
import { checkImage, resolveCommand, resolveCpus, resolveMemory, resolveTimeout, type BootOptions } from "./options.js";

const GiB = 1024 ** 3;
let pvmNoticeShown = false;

function noticePvmMemoryCap(): void {
  if (pvmNoticeShown || process.env.STASIS_QUIET === "1") return;
  pvmNoticeShown = true;
  process.stderr.write(
    `stasis: this host's KVM is kvm_pvm (guest kernel code is emulated), so guest memory defaults to ${PVM_DEFAULT_MEMORY_MIB} MiB instead of half the host; pass memory (--memory) to choose\n`,
  );
}

/** The engine a booting VM will snapshot with; undefined when none applies (no default installed). */
export function bootEngine(opts: Pick<BootOptions, "snapshotEngine" | "engines">): SnapshotEngine | undefined {
  if (opts.snapshotEngine !== undefined) {
    if (typeof opts.snapshotEngine !== "string" || opts.snapshotEngine === "") {
      throw new TypeError(`snapshotEngine must be an engine name, got ${JSON.stringify(opts.snapshotEngine)}`);
    }
    return findEngine(opts.snapshotEngine, opts.engines);
  }
  // vmstate is the default where the VMM supports it (x86_64 Linux/KVM today).
  if (process.platform !== "linux" || process.arch !== "x64") return undefined;
  return knownEngines(opts.engines).find((e) => e.name === "vmstate");
}

export function requireKvm(kvm: KvmKind): void {
  if (kvm === "none") {
    throw new BootError(
      ErrorCode.BOOT_KVM_UNAVAILABLE,
      "/dev/kvm is missing or not accessible: enable virtualisation (KVM) on this host or add your user to the kvm group",
    );
  }
}

export async function boot(opts: BootOptions = {}): Promise<VmHandle> {
  const phases = new PhaseTimer("boot");
  const kvm = detectKvm();

  // 1. Validate everything the caller gave us.
  const image = checkImage(opts);
  const name = opts.name !== undefined ? checkName(opts.name) : undefined;
  const engine = bootEngine(opts);
  const baked = phases.time("image-config", () => readImageConfig(image));
  const command = resolveCommand(opts, baked);
  const memory = resolveMemory(opts, kvm);
  const cpus = resolveCpus(opts.cpus, kvm);
  const timeoutMs = resolveTimeout(opts.timeoutMs, kvm);
  const vmmCwd = opts.cwd ?? process.cwd();
  const kernel = resolveKernel(opts.kernel, vmmCwd);
  const binary = resolveVmmBinary(opts.binary, vmmCwd);
  const init = resolveGuestInit();
  const agent = resolveGuestAgent();
  requireKvm(kvm);
  if (memory.capped) noticePvmMemoryCap();

  // 2. Take the name, materialise the disks and the initramfs.
  if (name !== undefined) reserveName(name);
  let runDir: string | undefined;
  let started = false;
  try {
    const rootImg = ensureRootfsImage(image, { onPhase: (n, ms) => phases.record(`rootfs.${n}`, ms) });
    runDir = mkdtempSync(path.join(os.tmpdir(), "stasis-vm-"));
    const upper = path.join(runDir, "upper.img");
    const upperSize = opts.rootDiskSizeBytes ?? 2 * GiB;
    phases.time("upper-disk", () => createUpperDisk(upper, upperSize));
    const initrd = path.join(runDir, "initramfs.cpio");
    const guestConfig = { ...command, root: "/dev/vda", upper: "/dev/vdb" };
    phases.time("initramfs", () => writeFileSync(initrd, buildBootInitramfs(init, guestConfig, Date.now(), agent)));
    const controlSocket = path.join(runDir, "control.sock");
    // 3. Start the VMM.
    const vmmEnv = { ...(opts.vmmEnv ?? {}) };
    const prep = engine?.prepareBoot?.({ runDir, vmmEnv }) ?? { args: [], entry: {} };
    // A caller-preset STASIS_VSOCK is the caller's bridge: exec is then unavailable to us (B54).
    const vsockPath = vmmEnv.STASIS_VSOCK ? undefined : path.join(runDir, "vsock.sock");
    const args = [
      "--kernel", kernel,
      "--initrd", initrd,
      "--cpus", String(cpus),
      "--disk", `${rootImg}:ro`,
      "--disk", upper,
      "--control", controlSocket,
      "--report-fd", "3",
      ...(vsockPath ? ["--vsock", vsockPath] : []),
      ...(vmmEnv.STASIS_MEMORY ? [] : ["--memory", String(memory.mib)]),
      ...prep.args,
      ...(opts.args ?? []),
    ];
    const plan: LaunchPlan = {
      binary,
      args,
      cwd: vmmCwd,
      env: { ...process.env, ...prep.env, ...vmmEnv },
      runDir,
      controlSocket,
      ...(vsockPath ? { vsockPath } : {}),
      ...(name !== undefined ? { name } : {}),
      imagePath: image,
      rootImg,
      rootImgIsCache: true,
      ...(vmmEnv.STASIS_MEMORY ? {} : { memoryCeilingMib: memory.mib }),
      cpus,
      timeoutMs,
      readiness: "agent",
      readyTimeoutMs: timeoutMs,
      entry: { ...(engine ? { engine: engine.name } : {}), ...prep.entry },
      ...(opts.engines ? { engines: opts.engines } : {}),
      phases,
      onLog: opts.onLog,
    };
    const handle = await launchVm(plan, opts);
    started = true;
    opts.onLog?.(phases.event());
    return handle;
  } finally {
    if (!started) {
      if (runDir) rmSync(runDir, { recursive: true, force: true });
      if (name !== undefined) releaseName(name, process.pid);
    }
  }
}
