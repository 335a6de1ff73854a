/**
 * boot(): options → launch plan → one VMM process → VmHandle.
 * Every check that can fail on user input runs before the VMM starts, and
 * every file made for this boot lives in one run directory that goes away
 * with the VM on every exit path.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { BootError, ErrorCode } from "../errors/index.js";
import { detectKvm, type KvmKind } from "../host/kvm.js";
import { readImageConfig } from "../image/image-config.js";
import { ensureRootfsImage, markRootfsImageClean } from "../image/rootfs-cache.js";
import { createUpperDisk } from "../image/upper-disk.js";
import { buildBootInitramfs } from "../initramfs/boot-initramfs.js";
import { PhaseTimer } from "../log/events.js";
import { resolveGuestInit, resolveKernel, resolveVmmBinary } from "../native/resolve.js";
import { trackVm } from "./cleanup.js";
import { VmProcessHandle, type VmHandle } from "./handle.js";
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

function requireKvm(kvm: KvmKind): void {
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
  const baked = phases.time("image-config", () => readImageConfig(image));
  const command = resolveCommand(opts, baked);
  const memory = resolveMemory(opts, kvm);
  const cpus = resolveCpus(opts.cpus, kvm);
  const timeoutMs = resolveTimeout(opts.timeoutMs, kvm);
  const vmmCwd = opts.cwd ?? process.cwd();
  const kernel = resolveKernel(opts.kernel, vmmCwd);
  const binary = resolveVmmBinary(opts.binary, vmmCwd);
  const init = resolveGuestInit();
  requireKvm(kvm);
  if (memory.capped) noticePvmMemoryCap();

  // 2. Materialise the disks and the initramfs.
  const rootImg = ensureRootfsImage(image, { onPhase: (name, ms) => phases.record(`rootfs.${name}`, ms) });
  const runDir = mkdtempSync(path.join(os.tmpdir(), "stasis-vm-"));
  let started = false;
  try {
    const upper = path.join(runDir, "upper.img");
    const upperSize = opts.rootDiskSizeBytes ?? 2 * GiB;
    phases.time("upper-disk", () => createUpperDisk(upper, upperSize));
    const initrd = path.join(runDir, "initramfs.cpio");
    phases.time("initramfs", () =>
      writeFileSync(initrd, buildBootInitramfs(init, { ...command, root: "/dev/vda", upper: "/dev/vdb" })),
    );
    const controlSocket = path.join(runDir, "control.sock");

    // 3. Start the VMM.
    const vmmEnv = { ...(opts.vmmEnv ?? {}) };
    const args = [
      "--kernel", kernel,
      "--initrd", initrd,
      "--cpus", String(cpus),
      "--disk", `${rootImg}:ro`,
      "--disk", upper,
      "--control", controlSocket,
      "--report-fd", "3",
      ...(vmmEnv.STASIS_MEMORY ? [] : ["--memory", String(memory.mib)]),
      ...(opts.args ?? []),
    ];
    const env: NodeJS.ProcessEnv = { ...process.env, ...vmmEnv };
    if (opts.pdeathsig !== false) env.STASIS_PDEATHSIG = "1";
    const child = phases.time("spawn", () =>
      spawn(binary, args, { cwd: vmmCwd, env, stdio: ["pipe", "pipe", "pipe", "pipe"] }),
    );
    if (child.pid === undefined) {
      const err = await new Promise<Error>((resolve) => child.once("error", resolve));
      throw new BootError(ErrorCode.BOOT_VMM_MISSING, `could not start the VMM ${binary}: ${err.message}`, { cause: err });
    }
    child.on("error", () => {});
    started = true;
    trackVm(child.pid, runDir);
    const handle = new VmProcessHandle({
      child: child as typeof child & { pid: number },
      reportStream: child.stdio[3] as Readable,
      runDir,
      controlSocket,
      timeoutMs,
      onStdout: opts.onStdout,
      onStderr: opts.onStderr,
      onConsole: opts.onLog ? (chunk) => opts.onLog!({ source: "guest-console", chunk }) : undefined,
      onExit: (_report, code) => {
        if (code !== null) markRootfsImageClean(rootImg);
      },
    });
    opts.onLog?.(phases.event());
    return handle;
  } finally {
    if (!started) rmSync(runDir, { recursive: true, force: true });
  }
}
