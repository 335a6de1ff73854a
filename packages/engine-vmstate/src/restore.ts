/**
 * vmstate restore (docs/vmstate.md): start a VMM with `--restore <bundle>`,
 * the same root image and a private copy of the writable disk, wait until
 * its vCPUs run, then thaw the guest (clock, RNG) before handing it over —
 * or, for a warm boot, hand it its workload (`start`) instead.
 * The bundle is only ever read: guest RAM is mapped copy-on-write, the disk
 * is copied, so one bundle restores any number of times.
 */
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  BootError,
  ErrorCode,
  PhaseTimer,
  SnapshotError,
  detectKvm,
  ensureRootfsImage,
  handOverGuest,
  hostClock,
  isStasisError,
  launchVm,
  releaseName,
  requireKvm,
  reserveName,
  resolveTimeout,
  resolveVmmBinary,
  startWorkload,
  type EngineRestoreOptions,
  type HostClock,
  type KvmKind,
  type LaunchPlan,
  type SnapshotBundle,
  type VmHandle,
} from "@stasis/core";
import { MEMORY_FILE, ROOTFS_FILE, SIGUSR1_SNAPSHOT_DIR, STATE_FILE, UPPER_DISK_FILE } from "./bundle-files.js";
import { sparseCopy } from "./copy-file.js";
import { checkRestoreOptions } from "./restore-options.js";
import { ENGINE_NAME } from "./snapshot.js";
import { restoreFailure } from "./vmm-errors.js";

/** What tests may replace. */
export interface RestoreDeps {
  /** Throws when VMs cannot run here (default: BOOT_KVM_UNAVAILABLE without /dev/kvm). */
  checkHost: (kvm: KvmKind) => void;
  clock: HostClock;
}

export const defaultRestoreDeps: RestoreDeps = { checkHost: requireKvm, clock: hostClock };

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function checkBundle(dir: string): void {
  if (!isFile(path.join(dir, STATE_FILE))) {
    throw new BootError(ErrorCode.BOOT_SNAPSHOT_NOT_FOUND, `${dir} is not a vmstate bundle: it has no ${STATE_FILE}`);
  }
  for (const [file, what] of [[MEMORY_FILE, "guest memory"], [UPPER_DISK_FILE, "writable disk"]] as const) {
    if (!isFile(path.join(dir, file))) {
      throw new SnapshotError(
        ErrorCode.SNAPSHOT_BUNDLE_INVALID,
        `the bundle ${dir} is incomplete: ${file} (the VM's ${what}) is missing; copy the whole directory (sparse-aware: cp -a --sparse=always, rsync -aS)`,
      );
    }
  }
}

/** The bundle's own root image, else the image tarball through the rootfs cache. */
function rootImage(bundle: SnapshotBundle, opts: EngineRestoreOptions, phases: PhaseTimer): { rootImg: string; isCache: boolean; imagePath?: string } {
  const image = opts.image ?? bundle.meta.sourceImage;
  const imagePath = image !== undefined ? path.resolve(image) : undefined;
  const inBundle = path.join(bundle.dir, bundle.meta.rootfs ?? ROOTFS_FILE);
  if (isFile(inBundle)) return { rootImg: inBundle, isCache: false, ...(imagePath ? { imagePath } : {}) };
  // A fork's scratch bundle names the cached image it could not link (the
  // VMM checks it is still the same image).
  const recorded = bundle.meta.rootfsPath;
  if (recorded !== undefined && opts.image === undefined && isFile(recorded)) {
    return { rootImg: recorded, isCache: true, ...(imagePath ? { imagePath } : {}) };
  }
  if (imagePath === undefined || !existsSync(imagePath)) {
    throw new BootError(
      ErrorCode.BOOT_IMAGE_NOT_FOUND,
      imagePath === undefined
        ? `the bundle ${bundle.dir} has no ${ROOTFS_FILE} and records no source image: pass image (--image) with the rootfs tarball the source booted from`
        : `the bundle ${bundle.dir} has no ${ROOTFS_FILE} and its source image ${imagePath} does not exist here: pass image (--image) with that tarball`,
    );
  }
  const rootImg = ensureRootfsImage(imagePath, { onPhase: (n, ms) => phases.record(`rootfs.${n}`, ms) });
  return { rootImg, isCache: true, imagePath };
}

export async function restoreVmstate(bundle: SnapshotBundle, opts: EngineRestoreOptions, deps: RestoreDeps = defaultRestoreDeps): Promise<VmHandle> {
  const phases = new PhaseTimer("restore");
  const { dir, meta } = bundle;
  checkBundle(dir);
  checkRestoreOptions(opts, meta);
  const kvm = detectKvm();
  const vmmCwd = opts.cwd ?? process.cwd();
  const binary = resolveVmmBinary(opts.binary, vmmCwd);
  const timeoutMs = resolveTimeout(opts.timeoutMs, kvm);
  deps.checkHost(kvm);

  const name = opts.name;
  if (name !== undefined) reserveName(name);
  let runDir: string | undefined;
  let started = false;
  try {
    const root = rootImage(bundle, opts, phases);
    runDir = mkdtempSync(path.join(os.tmpdir(), "stasis-vm-"));
    const upper = path.join(runDir, "upper.img");
    // The VM writes its disk: never the bundle's file (docs/vmstate.md).
    phases.time("disk-copy", () => sparseCopy(path.join(dir, UPPER_DISK_FILE), upper));
    const controlSocket = path.join(runDir, "control.sock");
    const vmstatePath = path.join(runDir, SIGUSR1_SNAPSHOT_DIR);
    const vmmEnv = { ...(opts.vmmEnv ?? {}) };
    const vsockPath = vmmEnv.STASIS_VSOCK ? undefined : path.join(runDir, "vsock.sock");
    const args = [
      "--restore", dir,
      "--disk", `${root.rootImg}:ro`,
      "--disk", upper,
      "--control", controlSocket,
      "--report-fd", "3",
      ...(vsockPath ? ["--vsock", vsockPath] : []),
      "--snapshot-path", vmstatePath,
      ...(opts.args ?? []),
    ];
    const sourceName = meta.sourceName;
    const plan: LaunchPlan = {
      binary,
      args,
      cwd: vmmCwd,
      env: { ...process.env, ...vmmEnv },
      runDir,
      controlSocket,
      ...(vsockPath ? { vsockPath } : {}),
      ...(name !== undefined ? { name } : {}),
      // B110: `<source>/<pid>`; an unnamed source gives an unnamed restore.
      ...(name === undefined && sourceName !== undefined && !opts.warm ? { autoName: (pid: number) => `${sourceName}/${pid}` } : {}),
      ...(root.imagePath !== undefined ? { imagePath: root.imagePath } : {}),
      rootImg: root.rootImg,
      rootImgIsCache: root.isCache,
      ...(meta.memoryMib !== undefined ? { memoryCeilingMib: meta.memoryMib } : {}),
      ...(meta.cpus !== undefined ? { cpus: meta.cpus } : {}),
      timeoutMs,
      readiness: "restored",
      readyTimeoutMs: resolveTimeout(undefined, kvm),
      notReady: (r) => restoreFailure(dir, r),
      // A warm boot is a boot: it records the cache entry, not a lineage.
      entry: { engine: ENGINE_NAME, vmstatePath, ...(opts.warm ? { warmKey: opts.warm.key } : { forkedFrom: dir }) },
      cleanupPaths: opts.cleanupPaths,
      ...(opts.engines ? { engines: opts.engines } : {}),
      phases,
      ...(opts.onLog ? { onLog: opts.onLog } : {}),
    };
    const handle = await launchVm(plan, opts);
    started = true;
    if (vsockPath && opts.warm) {
      const { workload, hostname, machineId } = opts.warm;
      await startWorkload(handle, vsockPath, phases, { workload, hostname, machineId, clock: deps.clock }, {
        detached: opts.detached === true,
        returnEndedVm: false,
      });
    } else if (vsockPath) {
      try {
        await handOverGuest(vsockPath, phases, { clock: deps.clock });
      } catch (err) {
        await handle.kill();
        throw isStasisError(err, ErrorCode.SNAPSHOT_THAW_FAILED)
          ? err
          : new SnapshotError(
              ErrorCode.SNAPSHOT_THAW_FAILED,
              `the restored VM's agent did not take the thaw request (its clock and RNG would be stale), so the VM was stopped: ${(err as Error).message}`,
              { cause: err },
            );
      }
    }
    opts.onLog?.(phases.event());
    return handle;
  } finally {
    if (!started) {
      if (runDir) rmSync(runDir, { recursive: true, force: true });
      if (name !== undefined) releaseName(name, process.pid);
    }
  }
}
