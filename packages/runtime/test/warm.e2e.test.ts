/**
 * End-to-end: warm boot (docs/warm-boot.md, issue 5) on real VMs. A private,
 * empty cache per file: the first boot of a shape fills it, later ones
 * restore it and get their own workload, identity, entropy and clock; two
 * boots filling one key at once both work and leave one entry; a damaged
 * entry is discarded and refilled; `warm: false` leaves the cache alone;
 * the size bound evicts the least recently used entry.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boot, listWarm, resolveBaseRootfs, type LogEvent, type VmHandle, type WarmLogEvent } from "@stasis/runtime";
import { GUEST_TIME, parseGuestTimeNs } from "./support/counter.js";
import { TEST_MEMORY_MIB, assertKvm, makeUserTarball, registryLeftovers, runDirs, runVmTests, usePrivateTmpdir } from "./support/vm-env.js";

const MINUTE = 60_000;

/** The warm events of one boot, in order ("miss", "published", …). */
function warmEvents(events: LogEvent[]): WarmLogEvent["event"][] {
  return events.filter((e): e is WarmLogEvent => e.source === "warm").map((e) => e.event);
}

interface Run {
  vm: VmHandle;
  events: LogEvent[];
}

describe.skipIf(!runVmTests)("warm boot", () => {
  let base: string;
  let userTarball: string;
  let warmDir: string;
  let restoreTmpdir: (() => void) | undefined;
  const savedEnv: Record<string, string | undefined> = {};
  const setEnv = (k: string, v: string | undefined) => {
    if (!(k in savedEnv)) savedEnv[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  };

  beforeAll(() => {
    assertKvm();
    restoreTmpdir = usePrivateTmpdir();
    warmDir = mkdtempSync(path.join(os.tmpdir(), "warm-cache-"));
    setEnv("STASIS_WARM_DIR", warmDir);
    setEnv("STASIS_WARM", undefined);
    setEnv("STASIS_WARM_CACHE_SIZE", undefined);
    base = resolveBaseRootfs();
    userTarball = makeUserTarball("warm-user-tarball");
  });

  afterAll(() => {
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    if (userTarball) rmSync(path.dirname(userTarball), { recursive: true, force: true });
    restoreTmpdir?.();
  });

  async function run(opts: Parameters<typeof boot>[0]): Promise<Run> {
    const events: LogEvent[] = [];
    const vm = await boot({ memory: TEST_MEMORY_MIB, ...opts, onLog: (e) => events.push(e) });
    return { vm, events };
  }

  /** Output and exit of a command run as the boot's own workload. */
  async function bootOutput(opts: Parameters<typeof boot>[0]): Promise<{ out: string; code: number; warm: WarmLogEvent["event"][]; milestones: number[] }> {
    const r = await run(opts);
    const exit = await r.vm.wait();
    return { out: await r.vm.output(), code: exit.code, warm: warmEvents(r.events), milestones: exit.report.milestones.map((m) => m.id) };
  }

  it("the first boot of a shape boots cold, runs its workload and fills the cache (W1)", async () => {
    const first = await bootOutput({ image: base, cmd: ["/bin/sh", "-c", 'echo "first $A $(pwd)"; exit 4'], env: { A: "a1" }, guestCwd: "/tmp" });
    expect(first.warm).toEqual(["miss", "published"]);
    expect(first.out).toBe("first a1 /tmp\n");
    expect(first.code).toBe(4);
    // Cold: /init started (1), the agent listened (4) and /init waited for the workload (5) before it ran (2, 3).
    expect(first.milestones.filter((id) => id !== 4 && id !== 5)).toEqual([1, 2, 3]);
    expect(first.milestones.indexOf(5)).toBeLessThan(first.milestones.indexOf(2));
    const entries = listWarm();
    expect(entries).toHaveLength(1);
    expect(entries[0]!.inputs).toMatchObject({ memoryMib: TEST_MEMORY_MIB, cpus: 1 });
  }, 10 * MINUTE);

  it("later boots restore it: their own cmd, env, cwd and exit status, and only the workload's milestones (W1, W2)", async () => {
    const [a, b] = await Promise.all([
      bootOutput({ image: base, cmd: ["/bin/sh", "-c", 'echo "second $A $(pwd)"; echo to-stderr >&2; exit 7'], env: { A: "a2" }, guestCwd: "/etc" }),
      bootOutput({ image: base, cmd: ["/no/such/command"] }),
    ]);
    expect(a.warm).toEqual(["hit"]);
    expect(a.out).toBe("second a2 /etc\n");
    expect(a.code).toBe(7);
    expect(a.milestones).toEqual([2, 3]);
    expect(b.warm).toEqual(["hit"]);
    expect(b.code).toBe(127);
  }, 10 * MINUTE);

  it("each warm VM has its own hostname, machine id, entropy and a correct wall clock; the registry says warm (W3)", async () => {
    const names = [`warm-a-${process.pid}`, `warm-b-${process.pid}`];
    const runs = await Promise.all(names.map((name) => run({ image: base, cmd: ["/bin/sh", "-c", "exec sleep 100000"], name, detached: true })));
    try {
      const seen = await Promise.all(
        runs.map(async (r) => {
          expect(warmEvents(r.events)).toEqual(["hit"]);
          const hostNs = BigInt(Date.now()) * 1_000_000n;
          const guestNs = parseGuestTimeNs((await r.vm.exec(GUEST_TIME)).stdout);
          const after = BigInt(Date.now()) * 1_000_000n;
          // The guest clock lies between the host's before and after the exec (with a little slack for rounding).
          expect(guestNs >= hostNs - 50_000_000n && guestNs <= after + 50_000_000n).toBe(true);
          const entry = JSON.parse(readFileSync(path.join(process.env.STASIS_REGISTRY_DIR!, String(r.vm.pid), "meta.json"), "utf8"));
          expect(entry.warmKey).toBe(listWarm()[0]!.key);
          expect(entry.forkedFrom).toBeUndefined();
          return (await r.vm.exec("hostname; cat /etc/machine-id; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'")).stdout.split("\n");
        }),
      );
      expect(seen[0]![0]).toBe(names[0]);
      expect(seen[1]![0]).toBe(names[1]);
      expect(seen[0]![1]).toMatch(/^[0-9a-f]{32}$/);
      expect(seen[0]![1]).not.toBe(seen[1]![1]);
      expect(seen[0]![2]).toMatch(/^[0-9a-f]{32}$/);
      expect(seen[0]![2]).not.toBe(seen[1]![2]);
    } finally {
      await Promise.all(runs.map((r) => r.vm.kill()));
    }
  }, 10 * MINUTE);

  it("warm: false boots cold and leaves the cache alone (W4)", async () => {
    const [entry] = listWarm();
    const usedBefore = statSync(path.join(entry!.dir, "last-used")).mtimeMs;
    const cold = await bootOutput({ image: base, cmd: ["/bin/sh", "-c", "echo cold"], warm: false });
    expect(cold.warm).toEqual([]);
    expect(cold.out).toBe("cold\n");
    expect(cold.milestones[0]).toBe(1);
    expect(listWarm().map((e) => e.key)).toEqual([entry!.key]);
    expect(statSync(path.join(entry!.dir, "last-used")).mtimeMs).toBe(usedBefore);
  }, 10 * MINUTE);

  it("two boots of one new shape at once: one fills, the other waits for its entry and restores it (W5)", async () => {
    const shape = { image: userTarball, cmd: ["/bin/sh", "-c", "cat /marker"] };
    const [a, b] = await Promise.all([bootOutput(shape), bootOutput(shape)]);
    for (const r of [a, b]) {
      expect(r.out).toBe("warm-user-tarball\n");
      expect(r.code).toBe(0);
    }
    // The cache had no entry for this image: the first boot claimed the fill and booted cold; the second waited.
    expect([a.warm, b.warm].map((w) => w.join(",")).sort()).toEqual(["miss,published", "waiting,hit"]);
    expect(readdirSync(warmDir).filter((n) => n.startsWith(".claim-"))).toEqual([]);
    expect(listWarm().filter((e) => e.inputs.image.path === userTarball)).toHaveLength(1);
    const third = await bootOutput(shape);
    expect(third.warm).toEqual(["hit"]);
    expect(third.out).toBe("warm-user-tarball\n");
  }, 15 * MINUTE);

  it("a damaged entry is discarded and refilled; the boot still runs (W6)", async () => {
    const entry = listWarm().find((e) => e.inputs.image.path === userTarball)!;
    const state = path.join(entry.dir, "state.vmstate");
    const bytes = readFileSync(state);
    for (let i = 40; i < bytes.length; i += 97) bytes[i] = bytes[i]! ^ 0xff;
    writeFileSync(state, bytes);
    const r = await bootOutput({ image: userTarball, cmd: ["/bin/sh", "-c", "cat /marker"] });
    expect(r.warm).toEqual(["discarded", "miss", "published"]);
    expect(r.out).toBe("warm-user-tarball\n");
    const again = await bootOutput({ image: userTarball, cmd: ["/bin/sh", "-c", "echo ok"] });
    expect(again.warm).toEqual(["hit"]);
  }, 15 * MINUTE);

  it("the size bound prunes the cache when an entry is published; the new entry stays (W7)", async () => {
    expect(listWarm()).toHaveLength(2);
    setEnv("STASIS_WARM_CACHE_SIZE", "1");
    try {
      const fresh = await bootOutput({ image: userTarball, cmd: ["/bin/sh", "-c", ":"], cpus: 2 });
      expect(fresh.code).toBe(0);
      expect(fresh.warm).toEqual(["miss", "published"]);
    } finally {
      setEnv("STASIS_WARM_CACHE_SIZE", undefined);
    }
    const left = listWarm();
    expect(left).toHaveLength(1);
    expect(left[0]!.inputs).toMatchObject({ cpus: 2 });
  }, 15 * MINUTE);

  it("leaves nothing behind: no registry entries, run dirs or fill dirs", () => {
    expect(registryLeftovers()).toEqual([]);
    expect(runDirs()).toEqual([]);
  });
});
