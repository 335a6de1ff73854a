/**
 * The vmstate engine against a fake VMM (test/support/fake-vmm.mjs), so the
 * whole host side — control request, staging, bundle layout, restore
 * launch, error mapping, thaw, fork, cleanup — runs without KVM. The real
 * VMM is exercised by packages/runtime/test/snapshot.e2e.test.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  attach,
  isStasisError,
  readMeta,
  restore,
  type LogEvent,
  type PhaseLogEvent,
  type RegistryEntry,
  type VmHandle,
} from "@stasis/core";
import { createVmstateEngine } from "../src/index.js";
import { buildFakeVmm, fakeVmmEnv, startFakeSourceVm, type FakeSourceVm } from "./support/fake-vmm.js";

const engine = createVmstateEngine({ checkHost: () => {} });
const engines = [engine];

let tmp: string;
let registry: string;
let launcher: string;
let rootImg: string;
let imagePath: string;
let fakeLog: string;
const saved: Record<string, string | undefined> = {};
const sources: FakeSourceVm[] = [];
const handles: VmHandle[] = [];

function setEnv(k: string, v: string | undefined): void {
  if (!(k in saved)) saved[k] = process.env[k];
  if (v === undefined) delete process.env[k];
  else process.env[k] = v;
}

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "stasis-vmstate-test-"));
  registry = path.join(tmp, "registry");
  for (const [k, v] of Object.entries({
    TMPDIR: tmp,
    STASIS_REGISTRY_DIR: registry,
    STASIS_DETACHED_LOG_DIR: path.join(tmp, "logs"),
    ...fakeVmmEnv(),
  })) setEnv(k, v);
  launcher = buildFakeVmm(tmp);
  setEnv("STASIS_VMM", launcher);
  rootImg = path.join(tmp, "root.img");
  writeFileSync(rootImg, Buffer.alloc(256 * 1024, 1));
  imagePath = path.join(tmp, "image.tar.gz");
  writeFileSync(imagePath, "not really a tarball");
  fakeLog = path.join(tmp, "fake-vmm.log");
  setEnv("FAKE_VMM_LOG", fakeLog);
});

afterEach(async () => {
  for (const h of handles.splice(0)) await h.kill().catch(() => {});
  for (const s of sources.splice(0)) {
    try {
      process.kill(s.pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  for (const k of ["FAKE_VMM_SNAPSHOT", "FAKE_VMM_RESTORE_ERROR", "FAKE_VMM_THAW", "FAKE_VMM_START"]) setEnv(k, undefined);
});

afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(tmp, { recursive: true, force: true });
});

async function source(name?: string, env?: Record<string, string>): Promise<FakeSourceVm> {
  const s = await startFakeSourceVm(launcher, { ...(name ? { name } : {}), rootImg, imagePath, registry, ...(env ? { env } : {}) });
  sources.push(s);
  return s;
}

function track<T extends VmHandle>(h: T): T {
  handles.push(h);
  return h;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isStasisError(e)) return e.code;
    throw e;
  }
  throw new Error("expected a rejection");
}

function entry(pid: number): RegistryEntry | undefined {
  try {
    return JSON.parse(readFileSync(path.join(registry, String(pid), "meta.json"), "utf8")) as RegistryEntry;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
    return state !== "Z";
  } catch {
    return false;
  }
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 25));
  return !alive(pid);
}

/** Names in tmp that look like staging dirs or their VMM-side partial dirs. */
function stagingLeftovers(dir = tmp): string[] {
  return readdirSync(dir).filter((n) => n.includes(".partial-"));
}

function thaws(): { pid: number; realtimeNs: string; seedBytes: number; hostNowMs: number }[] {
  if (!existsSync(fakeLog)) return [];
  return readFileSync(fakeLog, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((e) => e.event === "thaw");
}

function agentStarts(): Record<string, unknown>[] {
  if (!existsSync(fakeLog)) return [];
  return readFileSync(fakeLog, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((e) => e.event === "agent-start");
}

describe("vmstate snapshot", () => {
  it("writes a complete bundle, stops the source and cleans its registry entry and run dir (B97, B100, B101)", async () => {
    const src = await source("counter");
    const vm = await attach({ pid: src.pid, engines });
    expect((await vm.exec("bump")).stdout).toBe("1\n");
    expect((await vm.exec("bump")).stdout).toBe("2\n");
    const outDir = path.join(tmp, "bundle-a");
    const phases: PhaseLogEvent[] = [];
    const t0 = Date.now();
    const r = await vm.snapshot({ outDir, onLog: (e: LogEvent) => e.source === "phase" && phases.push(e) });
    const t1 = Date.now();
    expect(r).toMatchObject({ engine: "vmstate", snapDir: outDir, vmstatePath: path.join(outDir, "state.vmstate"), destructive: true, sourcePid: src.pid, sourceName: "counter", memoryBytes: 4096, consoleLog: "" });
    expect(r.imgDir).toBeUndefined();
    expect(r.timings).toMatchObject({ pauseMs: 1, totalMs: 6 });
    expect(r.snappedAt).toBeGreaterThanOrEqual(t0);
    expect(r.snappedAt).toBeLessThanOrEqual(t1);
    expect(readdirSync(outDir).sort()).toEqual(["disk-1.img", "memory.img", "meta.json", "rootfs.img", "state.vmstate"]);
    // The root image is shared with the cache, not copied.
    expect(statSync(path.join(outDir, "rootfs.img")).ino).toBe(statSync(rootImg).ino);
    const meta = readMeta(outDir);
    expect(meta).toMatchObject({ engine: "vmstate", sourceName: "counter", sourceImage: imagePath, snappedAt: r.snappedAt, memoryMib: 128, cpus: 1, sourcePid: src.pid, rootfs: "rootfs.img" });
    expect(meta.files?.sort()).toEqual(["disk-1.img", "memory.img", "rootfs.img", "state.vmstate"]);
    expect(Date.parse(meta.createdAt!)).toBe(r.snappedAt);
    expect(await gone(src.pid)).toBe(true);
    expect(entry(src.pid)).toBeUndefined();
    expect(existsSync(src.runDir)).toBe(false);
    expect(stagingLeftovers()).toEqual([]);
    expect(phases.map((p) => p.kind)).toEqual(["snapshot"]);
    expect([...phases[0]!.phases.keys()]).toEqual(expect.arrayContaining(["vmm", "vmm.pause", "rootfs", "meta", "commit", "exit"]));
  });

  it("leaveRunning keeps the source serving; dryRun writes nothing (B98, B107)", async () => {
    const src = await source("keeper");
    const vm = await attach({ name: "keeper", engines });
    await vm.exec("bump");
    const dry = await vm.snapshot({ outDir: path.join(tmp, "dry"), dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, engine: "vmstate", snapDir: path.join(tmp, "dry"), destructive: true, sourcePid: src.pid, sourceName: "keeper" });
    expect(existsSync(path.join(tmp, "dry"))).toBe(false);
    const outDir = path.join(tmp, "kept");
    mkdirSync(outDir); // an empty dir is fine
    const r = await vm.snapshot({ outDir, leaveRunning: true });
    expect(r.destructive).toBe(false);
    expect(alive(src.pid)).toBe(true);
    expect((await vm.exec("bump")).stdout).toBe("2\n");
    expect(existsSync(path.join(outDir, "state.vmstate"))).toBe(true);
    expect(stagingLeftovers()).toEqual([]);
  });

  it("refuses a non-empty or non-directory outDir and leaves it untouched (B99)", async () => {
    const src = await source();
    const vm = await attach({ pid: src.pid, engines });
    const full = path.join(tmp, "full");
    mkdirSync(full);
    writeFileSync(path.join(full, "keep.txt"), "mine");
    expect(await codeOf(vm.snapshot({ outDir: full }))).toBe("SNAPSHOT_OUT_DIR_NOT_EMPTY");
    expect(readdirSync(full)).toEqual(["keep.txt"]);
    const file = path.join(tmp, "a-file");
    writeFileSync(file, "x");
    expect(await codeOf(vm.snapshot({ outDir: file }))).toBe("SNAPSHOT_OUT_DIR_NOT_EMPTY");
    expect(await codeOf(vm.snapshot({ outDir: full, dryRun: true }))).toBe("SNAPSHOT_OUT_DIR_NOT_EMPTY");
    expect(alive(src.pid)).toBe(true);
  });

  it("a VMM refusal is SNAPSHOT_DUMP_FAILED with its reason; the VM keeps running; nothing is staged", async () => {
    const src = await source(undefined, { FAKE_VMM_SNAPSHOT: "refuse" });
    const vm = await attach({ pid: src.pid, engines });
    const outDir = path.join(tmp, "refused");
    let err: unknown;
    await vm.snapshot({ outDir }).catch((e: unknown) => (err = e));
    expect(isStasisError(err, "SNAPSHOT_DUMP_FAILED")).toBe(true);
    expect((err as Error).message).toContain("no space left on device");
    expect(alive(src.pid)).toBe(true);
    expect(existsSync(outDir)).toBe(false);
    expect(stagingLeftovers()).toEqual([]);
  });

  it("a VMM that does not answer in time is killed: SNAPSHOT_TIMEOUT, entry and staging gone (B103)", async () => {
    const src = await source(undefined, { FAKE_VMM_SNAPSHOT: "hang" });
    const vm = await attach({ pid: src.pid, engines });
    const outDir = path.join(tmp, "hung");
    expect(await codeOf(vm.snapshot({ outDir, timeoutMs: 500 }))).toBe("SNAPSHOT_TIMEOUT");
    expect(await gone(src.pid)).toBe(true);
    expect(entry(src.pid)).toBeUndefined();
    expect(existsSync(outDir)).toBe(false);
    expect(stagingLeftovers()).toEqual([]);
  });

  it("a VMM dying mid-snapshot leaves no bundle and no staging dir; it is no longer listed when the call fails", async () => {
    const src = await source(undefined, { FAKE_VMM_SNAPSHOT: "die" });
    const vm = await attach({ pid: src.pid, engines });
    const outDir = path.join(tmp, "died");
    let err: unknown;
    await vm.snapshot({ outDir }).catch((e: unknown) => (err = e));
    expect(isStasisError(err, "SNAPSHOT_DUMP_FAILED")).toBe(true);
    expect((err as Error).message).toContain("exited during the dump");
    expect(entry(src.pid)).toBeUndefined();
    expect(existsSync(outDir)).toBe(false);
    expect(stagingLeftovers()).toEqual([]);
  });
});

describe("vmstate restore", () => {
  let bundle: string;
  beforeAll(async () => {
    const src = await source("svc");
    const vm = await attach({ pid: src.pid, engines });
    await vm.exec("bump");
    await vm.exec("bump");
    bundle = path.join(tmp, "svc-bundle");
    await vm.snapshot({ outDir: bundle });
  });

  it("foreground: the workload continues, output streams, lineage and name are recorded, the guest is thawed (B110, B114)", async () => {
    const out: Buffer[] = [];
    const phases: PhaseLogEvent[] = [];
    const before = thaws().length;
    const vm = track(
      await restore({
        snapDir: bundle,
        engines,
        onStdout: (c) => out.push(c),
        onLog: (e) => e.source === "phase" && phases.push(e),
      }),
    );
    expect((await vm.exec("bump")).stdout).toBe("3\n");
    expect(vm.name).toBe(`svc/${vm.pid}`);
    const e = entry(vm.pid)!;
    expect(e).toMatchObject({ name: `svc/${vm.pid}`, forkedFrom: bundle, engine: "vmstate", rootImgPath: path.join(bundle, "rootfs.img"), imagePath, memoryCeilingMib: 128, cpus: 1 });
    expect(e.vmstatePath).toBe(path.join(e.runDir!, "sigusr1-snapshot"));
    // The VM writes a copy of the disk, never the bundle's file.
    expect(existsSync(path.join(e.runDir!, "upper.img"))).toBe(true);
    const log = readFileSync(fakeLog, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const start = log.filter((l) => l.event === "start").pop();
    expect(start.argv.slice(0, 2)).toEqual(["--restore", bundle]);
    expect(start.argv).toEqual(expect.arrayContaining(["--disk", `${path.join(bundle, "rootfs.img")}:ro`, "--disk", path.join(e.runDir!, "upper.img"), "--snapshot-path", e.vmstatePath!, "--report-fd", "3"]));
    for (const refused of ["--kernel", "--initrd", "--memory", "--cpus", "--append"]) expect(start.argv).not.toContain(refused);
    const t = thaws().slice(before);
    expect(t).toHaveLength(1);
    expect(t[0]!.seedBytes).toBe(64);
    // Host time + half a ping round trip: within a second of the fake's clock here.
    expect(Math.abs(Number(BigInt(t[0]!.realtimeNs) / 1_000_000n) - t[0]!.hostNowMs)).toBeLessThan(1000);
    expect(phases.map((p) => p.kind)).toEqual(["restore"]);
    expect([...phases[0]!.phases.keys()]).toEqual(expect.arrayContaining(["disk-copy", "spawn", "ready", "ready.vmm", "handover.ping", "handover.ping.rtt", "handover.thaw"]));
    await new Promise((r) => setTimeout(r, 50));
    expect(Buffer.concat(out).toString()).toContain("restored counter=2");
    await vm.kill();
    expect(entry(vm.pid)).toBeUndefined();
    expect(existsSync(e.runDir!)).toBe(false);
  });

  it("a warm restore hands over the workload with start instead of thaw, and is recorded as a boot", async () => {
    const before = { thaws: thaws().length, starts: agentStarts().length };
    const warm = { key: "k".repeat(32), workload: { cmd: ["/bin/app", "--serve"], env: { A: "1" }, cwd: "/srv" }, hostname: "web-1", machineId: "ab".repeat(16) };
    const vm = track(await engine.restore({ dir: bundle, meta: readMeta(bundle) }, { engines, cleanupPaths: [], detached: true, warm }));
    expect(thaws()).toHaveLength(before.thaws);
    const starts = agentStarts().slice(before.starts);
    expect(starts).toHaveLength(1);
    expect(starts[0]).toMatchObject({ ...warm.workload, hostname: "web-1", machineId: warm.machineId, seedBytes: 64 });
    const e = entry(vm.pid)!;
    // A boot, not a restore: no lineage, and no `<source>/<pid>` name.
    expect(e.warmKey).toBe(warm.key);
    expect(e.forkedFrom).toBeUndefined();
    expect(e.name).toBeUndefined();
    expect((await vm.exec("bump")).stdout).toBe("3\n");
  });

  it("a detached warm restore whose workload is refused is stopped and reports BOOT_WORKLOAD_REFUSED", async () => {
    setEnv("FAKE_VMM_START", "refuse");
    const warm = { key: "k".repeat(32), workload: { cmd: ["/bin/true"], env: {}, cwd: "/nope" }, hostname: "h", machineId: "cd".repeat(16) };
    let err: unknown;
    await engine.restore({ dir: bundle, meta: readMeta(bundle) }, { engines, cleanupPaths: [], detached: true, warm }).catch((e: unknown) => (err = e));
    expect(isStasisError(err, "BOOT_WORKLOAD_REFUSED")).toBe(true);
    expect((err as Error).message).toContain("chdir /nope");
    const left = readdirSync(registry).filter((n) => /^\d+$/.test(n)).map((n) => entry(Number(n)));
    expect(left.filter((e) => e?.warmKey !== undefined && alive(e.pid))).toEqual([]);
  });

  it("one bundle restores many times, each independent; detached restores and explicit names work (B114)", async () => {
    const [a, b] = await Promise.all([
      restore({ snapDir: bundle, engines, detached: true, name: "copy-a" }),
      restore({ snapDir: bundle, engines, detached: true, name: "copy-b" }),
    ]);
    track(a);
    track(b);
    expect(a.name).toBe("copy-a");
    expect((await a.exec("bump")).stdout).toBe("3\n");
    expect((await a.exec("bump")).stdout).toBe("4\n");
    expect((await b.exec("bump")).stdout).toBe("3\n");
    expect(entry(a.pid)).toMatchObject({ detached: true, forkedFrom: bundle });
    const runDir = entry(a.pid)!.runDir!;
    await a.kill();
    expect(entry(a.pid)).toBeUndefined();
    expect(existsSync(runDir)).toBe(false);
  });

  it("an unnamed source restores unnamed", async () => {
    const src = await source();
    const vm = await attach({ pid: src.pid, engines });
    const dir = path.join(tmp, "anon-bundle");
    await vm.snapshot({ outDir: dir });
    const r = track(await restore({ snapDir: dir, engines }));
    expect(r.name).toBeUndefined();
    expect(entry(r.pid)?.name).toBeUndefined();
  });

  it("VMM restore errors map to stasis codes; nothing is left running or registered", async () => {
    for (const [vmm, code] of [
      ["VMM_RESTORE_INVALID", "SNAPSHOT_BUNDLE_INVALID"],
      ["VMM_RESTORE_INCOMPATIBLE", "SNAPSHOT_INCOMPATIBLE"],
      ["VMM_RESTORE_DISK_MISMATCH", "SNAPSHOT_IMAGE_MISMATCH"],
      ["VMM_SOMETHING_ELSE", "BOOT_VMM_FAILED"],
    ] as const) {
      setEnv("FAKE_VMM_RESTORE_ERROR", vmm);
      expect(await codeOf(restore({ snapDir: bundle, engines })), vmm).toBe(code);
      expect(await codeOf(restore({ snapDir: bundle, engines, detached: true })), `${vmm} detached`).toBe(code);
    }
    setEnv("FAKE_VMM_RESTORE_ERROR", undefined);
    const left = readdirSync(registry).filter((n) => /^\d+$/.test(n)).map((n) => entry(Number(n)));
    expect(left.filter((e) => e?.warmKey !== undefined && alive(e.pid))).toEqual([]);
    expect(readdirSync(tmp).filter((n) => n.startsWith("stasis-vm-"))).toEqual([]);
  });

  it("a truncated or garbled state file is SNAPSHOT_BUNDLE_INVALID; missing pieces are named", async () => {
    const copy = (name: string) => {
      const dir = path.join(tmp, name);
      mkdirSync(dir);
      for (const f of readdirSync(bundle)) writeFileSync(path.join(dir, f), readFileSync(path.join(bundle, f)));
      return dir;
    };
    const truncated = copy("truncated");
    const state = readFileSync(path.join(truncated, "state.vmstate"));
    writeFileSync(path.join(truncated, "state.vmstate"), state.subarray(0, state.length - 5));
    expect(await codeOf(restore({ snapDir: truncated, engines }))).toBe("SNAPSHOT_BUNDLE_INVALID");
    const garbled = copy("garbled");
    writeFileSync(path.join(garbled, "state.vmstate"), Buffer.from("garbage garbage garbage garbage garbage"));
    expect(await codeOf(restore({ snapDir: garbled, engines }))).toBe("SNAPSHOT_BUNDLE_INVALID");

    const noState = copy("no-state");
    rmSync(path.join(noState, "state.vmstate"));
    // With meta.engine present, the vmstate engine itself reports the missing state.
    expect(await codeOf(restore({ snapDir: noState, engines }))).toBe("BOOT_SNAPSHOT_NOT_FOUND");
    const noDisk = copy("no-disk");
    rmSync(path.join(noDisk, "disk-1.img"));
    expect(await codeOf(restore({ snapDir: noDisk, engines }))).toBe("SNAPSHOT_BUNDLE_INVALID");
    const noMeta = copy("no-meta");
    rmSync(path.join(noMeta, "meta.json"));
    expect(await codeOf(restore({ snapDir: noMeta, engines }))).toBe("BOOT_SNAPSHOT_NOT_FOUND");
    const badMeta = copy("bad-meta");
    writeFileSync(path.join(badMeta, "meta.json"), "{ not json");
    expect(await codeOf(restore({ snapDir: badMeta, engines }))).toBe("SNAPSHOT_BUNDLE_INVALID");
    expect(await codeOf(restore({ snapDir: path.join(tmp, "no-such-bundle"), engines }))).toBe("BOOT_SNAPSHOT_NOT_FOUND");

    const noRoot = copy("no-root");
    rmSync(path.join(noRoot, "rootfs.img"));
    const meta = JSON.parse(readFileSync(path.join(noRoot, "meta.json"), "utf8"));
    meta.sourceImage = path.join(tmp, "gone.tar.gz");
    writeFileSync(path.join(noRoot, "meta.json"), JSON.stringify(meta));
    expect(await codeOf(restore({ snapDir: noRoot, engines }))).toBe("BOOT_IMAGE_NOT_FOUND");
    expect(readdirSync(tmp).filter((n) => n.startsWith("stasis-vm-"))).toEqual([]);
  });

  it("options a frozen VM cannot take are refused by name (BOOT_OPTION_UNSUPPORTED)", async () => {
    for (const opts of [{ memory: 256 }, { cpus: 2 }, { env: { A: "1" } }, { guestCwd: "/tmp" }, { mount: { host: tmp, guest: "/mnt/x" } }, { kernel: "/k" }, { rootDiskSizeBytes: 1 << 30 }]) {
      let err: unknown;
      await restore({ snapDir: bundle, engines, ...opts }).catch((e: unknown) => (err = e));
      expect(isStasisError(err, "BOOT_OPTION_UNSUPPORTED"), JSON.stringify(opts)).toBe(true);
      expect((err as Error).message).toContain(Object.keys(opts)[0]!);
    }
    // The same values as the bundle's are no change at all.
    const same = track(await restore({ snapDir: bundle, engines, memory: 128, cpus: 1 }));
    expect((await same.exec("bump")).stdout).toBe("3\n");
  });

  it("an agent that refuses thaw fails the restore (SNAPSHOT_THAW_FAILED) and stops the VM", async () => {
    setEnv("FAKE_VMM_THAW", "refuse");
    expect(await codeOf(restore({ snapDir: bundle, engines }))).toBe("SNAPSHOT_THAW_FAILED");
    expect(await codeOf(restore({ snapDir: bundle, engines, detached: true }))).toBe("SNAPSHOT_THAW_FAILED");
    setEnv("FAKE_VMM_THAW", undefined);
    const left = readdirSync(registry).filter((n) => /^\d+$/.test(n)).map((n) => entry(Number(n)));
    expect(left.filter((e) => e?.warmKey !== undefined && alive(e.pid))).toEqual([]);
  });

  it("a restored VM can itself be snapshotted; lineage goes into meta.forkedFrom", async () => {
    const vm = track(await restore({ snapDir: bundle, engines, name: "second" }));
    await vm.exec("bump");
    const next = path.join(tmp, "second-bundle");
    const r = await vm.snapshot({ outDir: next });
    expect(r.destructive).toBe(true);
    expect((await vm.wait()).code).toBe(0);
    expect(readMeta(next)).toMatchObject({ sourceName: "second", forkedFrom: bundle, sourceImage: imagePath });
    const again = track(await restore({ snapDir: next, engines }));
    expect((await again.exec("bump")).stdout).toBe("4\n");
  });
});

describe("vmstate fork", () => {
  it("source and fork continue independently from the fork point; the temporary bundle goes with the fork (B118, B119, B120, B123)", async () => {
    const src = await source("origin");
    const vm = await attach({ pid: src.pid, engines });
    await vm.exec("bump");
    const fork = track(await vm.fork());
    expect(fork.name).toBe(`origin/${fork.pid}`);
    expect((await vm.exec("bump")).stdout).toBe("2\n");
    expect((await fork.exec("bump")).stdout).toBe("2\n");
    expect((await fork.exec("bump")).stdout).toBe("3\n");
    expect((await vm.exec("bump")).stdout).toBe("3\n");
    const e = entry(fork.pid)!;
    const temp = e.cleanupPaths!.find((p) => path.basename(p).startsWith("stasis-fork-"))!;
    expect(e.forkedFrom).toBe(path.join(temp, "bundle"));
    expect(existsSync(path.join(temp, "bundle", "state.vmstate"))).toBe(true);
    expect(e.portForward).toEqual([]);
    await fork.kill();
    expect(existsSync(temp)).toBe(false);
    expect(alive(src.pid)).toBe(true);
  });

  it("a scratch bundle on another file system references the root image instead of copying it", async () => {
    const scratch = mkdtempSync(path.join("/dev/shm", "stasis-test-forkdir-"));
    setEnv("STASIS_FORK_DIR", scratch);
    try {
      const src = await source("shm");
      const vm = await attach({ pid: src.pid, engines });
      await vm.exec("bump");
      const fork = track(await vm.fork());
      const bundleDir = entry(fork.pid)!.forkedFrom!;
      expect(bundleDir.startsWith(scratch)).toBe(true);
      expect(existsSync(path.join(bundleDir, "rootfs.img"))).toBe(false);
      expect(readMeta(bundleDir)).toMatchObject({ rootfsPath: rootImg });
      expect(readMeta(bundleDir).rootfs).toBeUndefined();
      expect((await fork.exec("bump")).stdout).toBe("2\n");
      await fork.kill();
      expect(readdirSync(scratch)).toEqual([]);
    } finally {
      setEnv("STASIS_FORK_DIR", undefined);
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it("with outDir the bundle stays and restores again; a detached fork is named as asked", async () => {
    const src = await source("origin2");
    const vm = await attach({ pid: src.pid, engines });
    await vm.exec("bump");
    const outDir = path.join(tmp, "fork-kept");
    const fork = track(await vm.fork({ outDir, name: "sibling", detached: true }));
    expect(fork.name).toBe("sibling");
    expect(entry(fork.pid)).toMatchObject({ forkedFrom: outDir, detached: true });
    await fork.kill();
    expect(existsSync(path.join(outDir, "meta.json"))).toBe(true);
    const again = track(await restore({ snapDir: outDir, engines }));
    expect((await again.exec("bump")).stdout).toBe("2\n");
  });

  it("backpressure refuses before touching the source (B128)", async () => {
    const src = await source("tight");
    const vm = await attach({ pid: src.pid, engines });
    let err: unknown;
    await vm.fork({ freeMemoryThreshold: 0.5, readFreeMemory: async () => 1 }).catch((e: unknown) => (err = e));
    expect(isStasisError(err, "FORK_MEMORY_BACKPRESSURE")).toBe(true);
    expect((err as { retryable: boolean }).retryable).toBe(true);
    expect(readdirSync(tmp).filter((n) => n.startsWith("stasis-fork-"))).toEqual([]);
    expect(alive(src.pid)).toBe(true);
  });
});

describe("vmstate boots", () => {
  it("ask the VMM for a SIGUSR1 snapshot path through STASIS_SNAPSHOT_PATH and record it; a caller's preset wins", () => {
    expect(engine.prepareBoot!({ runDir: "/run/vm", vmmEnv: {} })).toEqual({
      args: [],
      env: { STASIS_SNAPSHOT_PATH: "/run/vm/sigusr1-snapshot" },
      entry: { vmstatePath: "/run/vm/sigusr1-snapshot" },
    });
    expect(engine.prepareBoot!({ runDir: "/run/vm", vmmEnv: { STASIS_SNAPSHOT_PATH: "/mine" } }).entry).toEqual({ vmstatePath: "/mine" });
  });

  it("recognises its bundles by state.vmstate", () => {
    const dir = mkdtempSync(path.join(tmp, "recog-"));
    expect(engine.recognises(dir)).toBe(false);
    writeFileSync(path.join(dir, "state.vmstate"), "");
    expect(engine.recognises(dir)).toBe(true);
  });
});
