/**
 * Shared by the end-to-end tests: whether VMs can boot here, and fixtures.
 * With CI=true a missing /dev/kvm is a failure, never a skip.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { boot, detectKvm, type BootOptions } from "@stasis/runtime";

export const kvmKind = detectKvm();
export const inCi = process.env.CI === "true";
/** Run VM tests when KVM is here, and always in CI (where they then fail loudly). */
export const runVmTests = kvmKind !== "none" || inCi;

export function assertKvm(): void {
  if (kvmKind === "none") {
    throw new Error("VM tests need a usable /dev/kvm; this machine has none (CI=true makes that a failure)");
  }
}

/** Guest RAM for tests: small guests boot faster on an emulating KVM. */
export const TEST_MEMORY_MIB = 128;

const PRIVATE_ENV = ["TMPDIR", "STASIS_REGISTRY_DIR", "STASIS_DETACHED_LOG_DIR"] as const;

/**
 * Gives this test process a private temp dir (boot() puts its per-boot run
 * directories in os.tmpdir()), registry and detached-log dir, so the leak
 * checks see only our own VMs and nothing under ~/.stasis is touched.
 */
export function usePrivateTmpdir(): () => void {
  const saved = PRIVATE_ENV.map((k) => process.env[k]);
  const dir = mkdtempSync(path.join(os.tmpdir(), "stasis-test-tmp-"));
  process.env.TMPDIR = dir;
  process.env.STASIS_REGISTRY_DIR = path.join(dir, "registry");
  process.env.STASIS_DETACHED_LOG_DIR = path.join(dir, "logs");
  return () => {
    PRIVATE_ENV.forEach((k, i) => {
      if (saved[i] === undefined) delete process.env[k];
      else process.env[k] = saved[i];
    });
    rmSync(dir, { recursive: true, force: true });
  };
}

/** Registry entries left in the private registry (dirs named by pid). */
export function registryLeftovers(): string[] {
  const root = process.env.STASIS_REGISTRY_DIR;
  if (!root) return [];
  try {
    return readdirSync(root).filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
}

/** Live stasis-vmm processes whose command line mentions `needle` (e.g. our private tmpdir). */
export function vmmProcesses(needle: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
      const state = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]?.[0];
      if (cmd.includes("stasis-vmm") && cmd.includes(needle) && state !== "Z") pids.push(Number(p));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/** Per-boot run directories in os.tmpdir() — used to check nothing is left behind. */
export function runDirs(): string[] {
  return readdirSync(os.tmpdir()).filter((n) => n.startsWith("stasis-vm-"));
}

/**
 * A user rootfs tarball that is not the base: Debian's static busybox plus
 * a marker file, built with plain tar like a user would.
 */
export function makeUserTarball(marker: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "stasis-test-rootfs-"));
  const tree = path.join(dir, "tree");
  for (const d of ["bin", "etc", "tmp", "proc", "sys", "dev"]) mkdirSync(path.join(tree, d), { recursive: true });
  execFileSync("cp", ["/bin/busybox", path.join(tree, "bin/busybox")]);
  for (const applet of ["sh", "echo", "cat", "pwd", "printenv", "poweroff"]) {
    execFileSync("ln", ["-s", "busybox", path.join(tree, "bin", applet)]);
  }
  writeFileSync(path.join(tree, "etc/environment"), "PATH=/bin\n");
  writeFileSync(path.join(tree, "marker"), `${marker}\n`);
  const tarball = path.join(dir, "my-rootfs.tar.gz");
  execFileSync("tar", ["-czf", tarball, "-C", tree, "."]);
  return tarball;
}

/**
 * Makes sure the warm cache holds an entry for each VM shape (image,
 * memory, cpus, …): one boot of each, running `sh -c :` (every test image
 * has a shell; not every one has /bin/true). A shape already cached costs a
 * warm boot; a new one a cold boot that fills the cache.
 */
export async function primeWarmCache(shapes: BootOptions[]): Promise<void> {
  await Promise.all(
    shapes.map(async (s) => {
      const vm = await boot({ ...s, cmd: ["/bin/sh", "-c", ":"], warm: true });
      const exit = await vm.wait();
      if (exit.code !== 0) throw new Error(`priming the warm cache of ${s.image}: the boot exited ${exit.code}`);
    }),
  );
}
