/**
 * Engine plugins (architecture.md §5): a third-party SnapshotEngine defined
 * right here drives snapshot, restore and fork through the public API, with
 * no VMM at all. Its "VM" is a registered `sleep` process whose state is a
 * JSON file in its run dir; its bundle is meta.json + toy.state.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  attach,
  boot,
  isStasisError,
  readMeta,
  registerEngine,
  registryRoot,
  restore,
  type EngineRestoreOptions,
  type EngineSnapshotOptions,
  type SnapshotBundle,
  type SnapshotEngine,
  type SnapshotResult,
  type SnapshotSource,
  type VmHandle,
} from "@stasis/runtime";
import { usePrivateTmpdir } from "./support/vm-env.js";

const SLEEP = realpathSync(execFileSync("sh", ["-c", "command -v sleep"]).toString().trim());
const started: number[] = [];

interface ToyState {
  counter: number;
}

/** Starts a toy VM: a registered process plus its state file. */
function startToyVm(engine: string, state: ToyState, extra: { name?: string; forkedFrom?: string; cleanupPaths?: string[] } = {}): number {
  const runDir = mkdtempSync(path.join(os.tmpdir(), "stasis-vm-"));
  writeFileSync(path.join(runDir, "state.json"), JSON.stringify(state));
  const child = spawn(SLEEP, ["1000"], { stdio: "ignore", detached: true });
  child.unref();
  const pid = child.pid!;
  started.push(pid);
  const entry = {
    pid,
    ...(extra.name !== undefined ? { name: extra.name } : {}),
    socketPath: "",
    runDir,
    cleanupPaths: [runDir, ...(extra.cleanupPaths ?? [])],
    vmmExe: SLEEP,
    engine,
    ...(extra.forkedFrom !== undefined ? { forkedFrom: extra.forkedFrom } : {}),
    startedAt: Date.now(),
  };
  mkdirSync(path.join(registryRoot(), String(pid)), { recursive: true });
  writeFileSync(path.join(registryRoot(), String(pid), "meta.json"), JSON.stringify(entry));
  return pid;
}

function readState(runDir: string): ToyState {
  return JSON.parse(readFileSync(path.join(runDir, "state.json"), "utf8")) as ToyState;
}

/** The plugin: everything a third party would write against the SnapshotEngine contract. */
function toyEngine(name: string): SnapshotEngine & { calls: string[] } {
  const calls: string[] = [];
  return {
    name,
    calls,
    recognises: (dir) => existsSync(path.join(dir, "toy.state")),
    async snapshot(vm: SnapshotSource, opts: EngineSnapshotOptions): Promise<SnapshotResult> {
      calls.push(`snapshot ${vm.pid} leaveRunning=${opts.leaveRunning} tcpClose=${opts.tcpClose}`);
      const t0 = Date.now();
      mkdirSync(opts.outDir, { recursive: true });
      writeFileSync(path.join(opts.outDir, "toy.state"), readFileSync(path.join(vm.runDir!, "state.json")));
      const snappedAt = Date.now();
      writeFileSync(
        path.join(opts.outDir, "meta.json"),
        JSON.stringify({ engine: name, ...(vm.name ? { sourceName: vm.name } : {}), snappedAt, sourcePid: vm.pid }),
      );
      if (!opts.leaveRunning) await vm.kill();
      return { engine: name, snapDir: opts.outDir, elapsedMs: Date.now() - t0, consoleLog: "", snappedAt, destructive: !opts.leaveRunning, sourcePid: vm.pid };
    },
    async restore(bundle: SnapshotBundle, opts: EngineRestoreOptions): Promise<VmHandle> {
      calls.push(`restore ${bundle.dir}`);
      const state = JSON.parse(readFileSync(path.join(bundle.dir, "toy.state"), "utf8")) as ToyState;
      const pid = startToyVm(name, state, { forkedFrom: bundle.dir, cleanupPaths: opts.cleanupPaths, ...(opts.name ? { name: opts.name } : {}) });
      return attach({ pid, engines: opts.engines ?? [] });
    },
  };
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

function entryOf(pid: number): Record<string, unknown> | undefined {
  const f = path.join(registryRoot(), String(pid), "meta.json");
  return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as Record<string, unknown>) : undefined;
}

let restoreEnv: () => void;
let tmp: string;
beforeAll(() => {
  restoreEnv = usePrivateTmpdir();
  tmp = os.tmpdir();
});
afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
});
afterAll(() => restoreEnv());

describe("a third-party engine through the public API", () => {
  const toy = toyEngine("toy");
  beforeAll(() => registerEngine(toy));

  it("registered: snapshot (destructive) → restore keeps the state; lineage recorded", async () => {
    const pid = startToyVm("toy", { counter: 7 });
    const vm = await attach({ pid });
    const outDir = path.join(tmp, "toy-bundle");
    const r = await vm.snapshot({ outDir });
    expect(r).toMatchObject({ engine: "toy", snapDir: outDir, destructive: true, sourcePid: pid });
    expect(readMeta(outDir).engine).toBe("toy");
    expect(entryOf(pid)).toBeUndefined(); // the source is gone and collected
    const back = await restore({ snapDir: outDir });
    expect(entryOf(back.pid)).toMatchObject({ engine: "toy", forkedFrom: outDir });
    expect(readState(entryOf(back.pid)!.runDir as string)).toEqual({ counter: 7 });
    await back.kill();
    expect(entryOf(back.pid)).toBeUndefined();
  });

  it("fork = snapshot(leaveRunning) + restore; the temporary bundle is listed for cleanup and removed with the fork", async () => {
    const pid = startToyVm("toy", { counter: 3 }, { name: "toy-src" });
    const vm = await attach({ name: "toy-src" });
    toy.calls.length = 0;
    const fork = await vm.fork({ name: "toy-fork" });
    expect(toy.calls[0]).toBe(`snapshot ${pid} leaveRunning=true tcpClose=true`);
    expect(toy.calls[1]).toMatch(/^restore .*stasis-fork-.*\/bundle$/);
    const e = entryOf(fork.pid)!;
    expect(e.name).toBe("toy-fork");
    const temp = (e.cleanupPaths as string[]).find((p) => p.includes("stasis-fork-"))!;
    expect(existsSync(path.join(temp, "bundle", "toy.state"))).toBe(true);
    expect(readState(e.runDir as string)).toEqual({ counter: 3 });
    expect(entryOf(pid)).toBeDefined(); // the source keeps running
    await fork.kill();
    expect(existsSync(temp)).toBe(false);
    // tcpKeep reaches the engine as tcpClose=false; a kept bundle stays.
    const kept = path.join(tmp, "toy-kept");
    const f2 = await vm.fork({ tcpKeep: true, outDir: kept });
    expect(toy.calls.at(-2)).toBe(`snapshot ${pid} leaveRunning=true tcpClose=false`);
    await f2.kill();
    expect(existsSync(path.join(kept, "toy.state"))).toBe(true);
  });

  it("detects its bundle by content when meta.json names no engine", async () => {
    const dir = path.join(tmp, "toy-anon");
    mkdirSync(dir);
    writeFileSync(path.join(dir, "toy.state"), JSON.stringify({ counter: 11 }));
    writeFileSync(path.join(dir, "meta.json"), JSON.stringify({ snappedAt: Date.now() }));
    const vm = await restore({ snapDir: dir });
    expect(readState(entryOf(vm.pid)!.runDir as string)).toEqual({ counter: 11 });
    await vm.kill();
  });
});

describe("engines passed per call (engines: [...])", () => {
  const mine = toyEngine("toy-unregistered");

  it("restore and snapshot use them; without them the engine is not installed", async () => {
    const pid = startToyVm("toy-unregistered", { counter: 5 });
    expect(await codeOf((await attach({ pid })).snapshot({ outDir: path.join(tmp, "never") }))).toBe("SNAPSHOT_ENGINE_NOT_INSTALLED");
    expect(existsSync(path.join(tmp, "never"))).toBe(false);
    const vm = await attach({ pid, engines: [mine] });
    const dir = path.join(tmp, "mine-bundle");
    await vm.snapshot({ outDir: dir, engines: [mine] });
    expect(await codeOf(restore({ snapDir: dir }))).toBe("SNAPSHOT_ENGINE_NOT_INSTALLED");
    const back = await restore({ snapDir: dir, engines: [mine] });
    // The restored handle keeps the engines it was given: it can fork again.
    const fork = await back.fork();
    expect(readState(entryOf(fork.pid)!.runDir as string)).toEqual({ counter: 5 });
    await fork.kill();
    await back.kill();
  });
});

describe("bundles no installed engine can take", () => {
  it("criu (img/, no engine field) and unknown engines: SNAPSHOT_ENGINE_NOT_INSTALLED with a clear message", async () => {
    const criu = path.join(tmp, "criu-bundle");
    mkdirSync(path.join(criu, "img"), { recursive: true });
    writeFileSync(path.join(criu, "meta.json"), JSON.stringify({ sourceName: "x", snappedAt: 1 }));
    let err: unknown;
    await restore({ snapDir: criu }).catch((e: unknown) => (err = e));
    expect(isStasisError(err, "SNAPSHOT_ENGINE_NOT_INSTALLED")).toBe(true);
    expect((err as Error).message).toContain("CRIU engine");
    const foreign = path.join(tmp, "foreign-bundle");
    mkdirSync(foreign);
    writeFileSync(path.join(foreign, "meta.json"), JSON.stringify({ engine: "quantum", snappedAt: 1 }));
    expect(await codeOf(restore({ snapDir: foreign }))).toBe("SNAPSHOT_ENGINE_NOT_INSTALLED");
  });

  it("the runtime registers vmstate: a bundle with state.vmstate and no engine field is restored by it", async () => {
    const dir = path.join(tmp, "vmstate-partial");
    mkdirSync(dir);
    writeFileSync(path.join(dir, "state.vmstate"), "");
    writeFileSync(path.join(dir, "meta.json"), JSON.stringify({ snappedAt: 1 }));
    // The vmstate engine took it: it reports its own missing files, before any VMM starts.
    let err: unknown;
    await restore({ snapDir: dir }).catch((e: unknown) => (err = e));
    expect(isStasisError(err, "SNAPSHOT_BUNDLE_INVALID")).toBe(true);
    expect((err as Error).message).toContain("memory.img");
  });

  it("boot({ snapshotEngine }) with an engine nobody installed fails before anything starts", async () => {
    const image = path.join(tmp, "empty.tar");
    writeFileSync(image, Buffer.alloc(10240));
    expect(await codeOf(boot({ image, cmd: ["true"], snapshotEngine: "quantum" }))).toBe("SNAPSHOT_ENGINE_NOT_INSTALLED");
    expect(readdirSync(tmp).filter((n) => n.startsWith("stasis-vm-"))).toEqual([]);
  });
});
