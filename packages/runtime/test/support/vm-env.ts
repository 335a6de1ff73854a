/**
 * Shared by the end-to-end tests: whether VMs can boot here, and fixtures.
 * With CI=true a missing /dev/kvm is a failure, never a skip.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { detectKvm } from "@stasis/runtime";

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

/**
 * Gives this test process a private temp dir (boot() puts its per-boot run
 * directories in os.tmpdir()), so the leak check sees only our own VMs and
 * not those of anything else running on the machine.
 */
export function usePrivateTmpdir(): () => void {
  const saved = process.env.TMPDIR;
  const dir = mkdtempSync(path.join(os.tmpdir(), "stasis-test-tmp-"));
  process.env.TMPDIR = dir;
  return () => {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
    rmSync(dir, { recursive: true, force: true });
  };
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
