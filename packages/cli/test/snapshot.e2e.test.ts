/**
 * The issue-4 user flow, as a user types it (`node dist/bin.js …`): boot a
 * counter detached, bump it, `stasis snapshot` it (the source stops),
 * `stasis restore` it (it counts on), `stasis fork` it (both count on
 * independently), `ls` shows the lineage; plus --dry-run, --keep-alive, a
 * non-empty out dir, and a foreground restore passing the guest status
 * through. One boot; the spawned CLIs inherit a private TMPDIR and registry.
 * B96–B99, B107, B110, B118–B120, B126.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUMP, COUNTER_SCRIPT, parseBump, quit } from "../../runtime/test/support/counter.js";
import { TEST_MEMORY_MIB, assertKvm, runVmTests, usePrivateTmpdir, vmmProcesses } from "../../runtime/test/support/vm-env.js";

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../dist/bin.js");
const MINUTE = 60_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function stasis(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function bump(target: string): Promise<{ n: number; pid: number }> {
  const r = await stasis(["exec", target, "--", "sh", "-c", BUMP]);
  if (r.code !== 0) throw new Error(`bump ${target} failed (${r.code}): ${r.stderr}`);
  return parseBump(r.stdout);
}

interface Identity {
  pid: number;
  name: string | null;
  socketPath: string;
  bootLogPath: string | null;
  forkedFrom: string | null;
}

describe.skipIf(!runVmTests)("stasis snapshot / restore / fork", () => {
  const name = `cli-counter-${process.pid}`;
  let restoreEnv: (() => void) | undefined;
  let tmp = "";
  let counterPid = 0;
  const live = new Set<number>();

  beforeAll(async () => {
    assertKvm();
    restoreEnv = usePrivateTmpdir();
    tmp = os.tmpdir();
    const r = await stasis(["boot", "--name", name, "--detach", "--json", "--memory", String(TEST_MEMORY_MIB), "--", "/bin/sh", "-c", COUNTER_SCRIPT]);
    if (r.code !== 0) throw new Error(`boot --detach failed (${r.code}): ${r.stderr}`);
    live.add((JSON.parse(r.stdout) as Identity).pid);
  }, 10 * MINUTE);

  afterAll(async () => {
    for (const pid of live) await stasis(["stop", String(pid), "--force"]);
    restoreEnv?.();
  }, 5 * MINUTE);

  it("counts 1, 2; snapshot --dry-run writes nothing (B107)", async () => {
    const a = await bump(name);
    counterPid = a.pid;
    expect(a.n).toBe(1);
    expect(await bump(name)).toEqual({ n: 2, pid: counterPid });
    const out = path.join(tmp, "counter.snap");
    const dry = await stasis(["snapshot", name, out, "--dry-run", "--json"]);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, name, engine: "vmstate", snapDir: out, destructive: true });
    expect(existsSync(out)).toBe(false);
  }, 5 * MINUTE);

  it("a non-empty out dir is refused and left alone (B99)", async () => {
    const full = path.join(tmp, "full");
    mkdirSync(full);
    writeFileSync(path.join(full, "mine"), "x");
    const r = await stasis(["snapshot", name, full]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("[SNAPSHOT_OUT_DIR_NOT_EMPTY]");
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(full)).toEqual(["mine"]);
  }, 5 * MINUTE);

  it("snapshot stops the source; restore --detach counts on: 3 (B96, B97, B110)", async () => {
    const out = path.join(tmp, "counter.snap");
    const snap = await stasis(["snapshot", name, out, "--json"]);
    expect(snap.code).toBe(0);
    const result = JSON.parse(snap.stdout);
    expect(Object.keys(result).sort()).toEqual(["elapsedMs", "engine", "snapDir", "vmstatePath"]);
    expect(result).toMatchObject({ engine: "vmstate", snapDir: out, vmstatePath: path.join(out, "state.vmstate") });
    const ls = JSON.parse((await stasis(["ls", "--json"])).stdout) as { name?: string }[];
    expect(ls.some((e) => e.name === name)).toBe(false);

    const r = await stasis(["restore", out, "--detach", "--json"]);
    expect(r.code).toBe(0);
    const id = JSON.parse(r.stdout) as Identity;
    live.add(id.pid);
    expect(id).toMatchObject({ name: `${name}/${id.pid}`, forkedFrom: out });
    expect(await bump(id.name!)).toEqual({ n: 3, pid: counterPid });
    const table = (await stasis(["ls"])).stdout;
    expect(table).toMatch(new RegExp(`^${id.pid}\\s+${name}/${id.pid}\\s.*\\s${out.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"));
  }, 10 * MINUTE);

  it("fork --detach: both count on from 3 independently; the source keeps answering (B118–B120, B126)", async () => {
    const source = (JSON.parse((await stasis(["ls", "--json"])).stdout) as { pid: number; name?: string }[]).find((e) => e.name?.startsWith(`${name}/`))!;
    const r = await stasis(["fork", source.name!, "--detach", "--json", "--new-name", `${name}-fork`]);
    expect(r.code).toBe(0);
    const fork = JSON.parse(r.stdout) as Identity;
    live.add(fork.pid);
    expect(fork.name).toBe(`${name}-fork`);
    expect(fork.forkedFrom).toMatch(/stasis-fork-/);
    expect(await bump(fork.name!)).toEqual({ n: 4, pid: counterPid });
    expect(await bump(source.name!)).toEqual({ n: 4, pid: counterPid });
    expect(await bump(fork.name!)).toEqual({ n: 5, pid: counterPid });
    // The fork outlives the `stasis fork` process that made it (B126).
    expect(vmmProcesses(tmp)).toContain(fork.pid);
    const stop = await stasis(["stop", fork.name!]);
    expect(stop.code).toBe(0);
    live.delete(fork.pid);
    expect(existsSync(path.dirname(fork.forkedFrom!))).toBe(false);
  }, 10 * MINUTE);

  it("snapshot --keep-alive leaves the source running; a foreground restore streams and exits with the guest's status", async () => {
    const source = (JSON.parse((await stasis(["ls", "--json"])).stdout) as { pid: number; name?: string }[]).find((e) => e.name?.startsWith(`${name}/`))!;
    const out = path.join(tmp, "kept.snap");
    const snap = await stasis(["snapshot", source.name!, out, "--keep-alive"]);
    expect(snap.code).toBe(0);
    expect(snap.stdout).toContain("keeps running");
    expect(await bump(source.name!)).toEqual({ n: 5, pid: counterPid });

    const fg = stasis(["restore", out, "--name", `${name}-fg`]);
    // Wait until the foreground restore has registered its VM, then end its workload with status 7.
    let pid: number | undefined;
    for (let i = 0; i < 600 && pid === undefined; i++) {
      const ls = JSON.parse((await stasis(["ls", "--json"])).stdout) as { pid: number; name?: string }[];
      pid = ls.find((e) => e.name === `${name}-fg`)?.pid;
      if (pid === undefined) await new Promise((r) => setTimeout(r, 500));
    }
    expect(pid).toBeDefined();
    live.add(pid!);
    expect(await bump(`${name}-fg`)).toEqual({ n: 5, pid: counterPid });
    await stasis(["exec", `${name}-fg`, "--", "sh", "-c", quit(7)]);
    const done = await fg;
    live.delete(pid!);
    expect(done.code).toBe(7);
    expect(done.stderr).not.toMatch(/\n\s+at /);
  }, 10 * MINUTE);
});
