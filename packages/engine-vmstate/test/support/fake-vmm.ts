/** Builds and describes the fake VMM (launcher.c + fake-vmm.mjs) for tests without KVM. */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Compiles the launcher into `dir`; returns its path. */
export function buildFakeVmm(dir: string): string {
  const out = path.join(dir, "fake-vmm");
  execFileSync("cc", ["-O", "-o", out, path.join(here, "launcher.c")]);
  return out;
}

/** Env the launcher needs to find Node and the fake. */
export function fakeVmmEnv(): Record<string, string> {
  return { FAKE_VMM_NODE: process.execPath, FAKE_VMM_SCRIPT: path.join(here, "fake-vmm.mjs") };
}

export interface FakeSourceVm {
  child: ChildProcess;
  pid: number;
  runDir: string;
  entryFile: string;
}

/**
 * A running "VM" as a detached boot would leave it: the fake VMM in boot
 * mode plus its registry entry, ready for attach().
 */
export async function startFakeSourceVm(launcher: string, opts: { name?: string; rootImg: string; imagePath: string; registry: string; env?: Record<string, string> }): Promise<FakeSourceVm> {
  const runDir = mkdtempSync(path.join(os.tmpdir(), "stasis-vm-"));
  const upper = path.join(runDir, "upper.img");
  writeFileSync(upper, Buffer.alloc(64 * 1024, 7));
  const control = path.join(runDir, "control.sock");
  const vsock = path.join(runDir, "vsock.sock");
  const child = spawn(launcher, ["--disk", `${opts.rootImg}:ro`, "--disk", upper, "--control", control, "--vsock", vsock], {
    stdio: "ignore",
    env: { ...process.env, ...fakeVmmEnv(), ...opts.env },
  });
  const pid = child.pid!;
  // Wait for both sockets: the VM is "up" once they exist.
  for (let i = 0; i < 200; i++) {
    try {
      execFileSync("test", ["-S", control, "-a", "-S", vsock]);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  const entry = {
    pid,
    ...(opts.name ? { name: opts.name } : {}),
    socketPath: vsock,
    controlPath: control,
    imagePath: opts.imagePath,
    rootImgPath: opts.rootImg,
    runDir,
    cleanupPaths: [runDir],
    vmmExe: launcher,
    engine: "vmstate",
    vmstatePath: path.join(runDir, "sigusr1-snapshot"),
    memoryCeilingMib: 128,
    cpus: 1,
    portForward: [],
    detached: true,
    startedAt: Date.now(),
  };
  const dir = path.join(opts.registry, String(pid));
  mkdirSync(dir, { recursive: true });
  const entryFile = path.join(dir, "meta.json");
  writeFileSync(entryFile, JSON.stringify(entry));
  if (opts.name) {
    mkdirSync(path.join(opts.registry, ".names"), { recursive: true });
    writeFileSync(path.join(opts.registry, ".names", `${encodeURIComponent(opts.name)}.json`), JSON.stringify({ name: opts.name, pid, vmmExe: launcher }));
  }
  return { child, pid, runDir, entryFile };
}
