/**
 * Registry without VMs: ordinary host processes stand in for VMMs, which is
 * what the registry sees of a VMM anyway (a pid, an executable, a start time).
 * B23–B27, B39 (timing of escalation), B41–B44.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import { readEntry, writeEntry, type RegistryEntry } from "./entry.js";
import { runGc } from "./gc.js";
import { findVm, list, parseTarget } from "./list.js";
import { checkName, pinNameToVmm, reserveName } from "./names.js";
import { registryRoot } from "./paths.js";
import { processStartTicks, validatePid } from "./process-identity.js";
import { stopVm } from "./stop.js";

let dir: string;
const children: ChildProcess[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "stasis-registry-test-"));
  process.env.STASIS_REGISTRY_DIR = path.join(dir, "vms");
});

afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  delete process.env.STASIS_REGISTRY_DIR;
  rmSync(dir, { recursive: true, force: true });
});

const SH = realpathSync("/bin/sh");

/** A long-running stand-in VMM; `ignoreTerm` makes it survive SIGTERM. */
async function fakeVmm(ignoreTerm = false): Promise<ChildProcess & { pid: number }> {
  const script = `${ignoreTerm ? "trap '' TERM; " : ""}echo up; while :; do sleep 1; done`;
  const c = spawn(SH, ["-c", script], { stdio: ["ignore", "pipe", "ignore"] });
  children.push(c);
  await new Promise((r) => c.stdout!.once("data", r));
  return c as ChildProcess & { pid: number };
}

function register(pid: number, extra: Partial<RegistryEntry> = {}): RegistryEntry {
  const e: RegistryEntry = { pid, socketPath: path.join(dir, `${pid}.sock`), startedAt: Date.now(), ...extra };
  writeEntry(e);
  return e;
}

function deadPid(): number {
  const c = spawn(SH, ["-c", "exit 0"]);
  return c.pid!;
}

describe("validatePid (B44)", () => {
  it("tells alive, dead and recycled apart", async () => {
    const vmm = await fakeVmm();
    const exe = realpathSync(`/proc/${vmm.pid}/exe`);
    expect(validatePid(vmm.pid, { vmmExe: exe, startedAt: Date.now() })).toBe("alive");
    expect(validatePid(vmm.pid, { vmmExe: exe, startTicks: processStartTicks(vmm.pid) })).toBe("alive");
    expect(validatePid(vmm.pid, { vmmExe: "/usr/bin/definitely-not-this" })).toBe("recycled");
    expect(validatePid(vmm.pid, { vmmExe: exe, startedAt: Date.now() - 3600_000 })).toBe("recycled");
    expect(validatePid(vmm.pid, { startTicks: (processStartTicks(vmm.pid) ?? 0) + 1 })).toBe("recycled");
    expect(validatePid(vmm.pid, {})).toBe("alive"); // legacy entry: liveness only
    const gone = deadPid();
    await new Promise((r) => setTimeout(r, 200));
    expect(validatePid(gone, {})).toBe("dead");
  });
});

describe("names (B24, B25)", () => {
  it("accepts path-shaped names and rejects ones that cannot be targeted", () => {
    expect(checkName("team/a/worker-1")).toBe("team/a/worker-1");
    for (const bad of ["", "123", "/abs", "a//b", "a/../b", "has space", "a/", "x".repeat(300)]) {
      expect(() => checkName(bad), bad).toThrow(expect.objectContaining({ code: "REGISTRY_NAME_INVALID" }));
    }
  });

  it("holds a name while its VMM lives and frees it when it is gone", async () => {
    const vmm = await fakeVmm();
    reserveName("a/b");
    pinNameToVmm("a/b", { pid: vmm.pid, vmmExe: realpathSync(`/proc/${vmm.pid}/exe`) });
    let err: unknown;
    try {
      reserveName("a/b");
    } catch (e) {
      err = e;
    }
    expect(isStasisError(err, "REGISTRY_NAME_IN_USE")).toBe(true);
    vmm.kill("SIGKILL");
    await new Promise((r) => vmm.once("exit", r));
    expect(() => reserveName("a/b")).not.toThrow();
  });
});

describe("list, findVm, gc (B23, B26, B27, B43)", () => {
  it("lists live entries under STASIS_REGISTRY_DIR and collects dead ones with their files", async () => {
    expect(registryRoot()).toBe(path.join(dir, "vms"));
    const vmm = await fakeVmm();
    register(vmm.pid, { name: "live-one", vmmExe: realpathSync(`/proc/${vmm.pid}/exe`) });
    const junk = path.join(dir, "run-dead");
    mkdirSync(junk);
    writeFileSync(path.join(junk, "disk.img"), "x");
    const gone = deadPid();
    await new Promise((r) => setTimeout(r, 200));
    register(gone, { name: "dead-one", cleanupPaths: [junk] });

    const dry = runGc({ dryRun: true });
    expect(dry).toEqual([expect.objectContaining({ pid: gone, status: "dead", removedPaths: [junk], registryRemoved: false })]);
    expect(existsSync(junk)).toBe(true);
    expect(readEntry(gone)).toBeDefined();

    expect(list().map((e) => e.name)).toEqual(["live-one"]);
    expect(existsSync(junk)).toBe(false); // list() collected the dead entry and its files
    expect(readEntry(gone)).toBeUndefined();
    expect(findVm({ name: "live-one" }).pid).toBe(vmm.pid);
    expect(findVm(parseTarget(String(vmm.pid))).name).toBe("live-one");
    expect(() => findVm({ name: "nope" })).toThrow(expect.objectContaining({ code: "REGISTRY_VM_NOT_FOUND" }));
    expect(runGc()).toEqual([]);
  });

  it("treats an entry whose pid now runs another program as recycled: gc removes it, stop refuses (B42)", async () => {
    const other = await fakeVmm();
    const junk = path.join(dir, "run-recycled");
    mkdirSync(junk);
    register(other.pid, { name: "recycled", vmmExe: "/opt/stasis/stasis-vmm", cleanupPaths: [junk] });
    await expect(stopVm({ name: "recycled" })).rejects.toMatchObject({ code: "REGISTRY_VM_NOT_FOUND" });
    expect(validatePid(other.pid, {})).toBe("alive"); // nothing was signalled
    const [r] = runGc();
    expect(r).toMatchObject({ pid: other.pid, status: "recycled", removedPaths: [junk], failedPaths: [], registryRemoved: true });
    expect(validatePid(other.pid, {})).toBe("alive");
  });
});

describe("stopVm (B39, B41)", () => {
  it("SIGTERMs, and removes the entry and its files", async () => {
    const vmm = await fakeVmm();
    const junk = path.join(dir, "run-a");
    mkdirSync(junk);
    register(vmm.pid, { name: "s1", vmmExe: realpathSync(`/proc/${vmm.pid}/exe`), cleanupPaths: [junk] });
    const dry = await stopVm({ name: "s1" }, { dryRun: true });
    expect(dry).toMatchObject({ signal: "SIGTERM", dryRun: true });
    expect(validatePid(vmm.pid, {})).toBe("alive");
    const r = await stopVm({ name: "s1" });
    expect(r).toMatchObject({ pid: vmm.pid, name: "s1", signal: "SIGTERM", escalated: false });
    expect(r.gc).toMatchObject({ removedPaths: [junk], registryRemoved: true });
    expect(existsSync(junk)).toBe(false);
    expect(list()).toEqual([]);
  });

  it("escalates to SIGKILL after the grace period when SIGTERM is ignored, or at once with force", async () => {
    const stubborn = await fakeVmm(true);
    register(stubborn.pid, { vmmExe: realpathSync(`/proc/${stubborn.pid}/exe`) });
    const t0 = Date.now();
    const r = await stopVm({ pid: stubborn.pid }, { graceMs: 500 });
    expect(r).toMatchObject({ signal: "SIGTERM", escalated: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);

    const other = await fakeVmm(true);
    register(other.pid);
    expect(await stopVm({ pid: other.pid }, { force: true })).toMatchObject({ signal: "SIGKILL", escalated: false });
  });
});
