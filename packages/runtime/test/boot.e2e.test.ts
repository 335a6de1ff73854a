/**
 * End-to-end: boot() runs real VMs on /dev/kvm (B1, B2, B7, B9, B15, B20),
 * each behaviour both ways: booted cold, and warm — restored from the warm
 * cache (docs/warm-boot.md), which a priming boot per VM shape fills first.
 * Boots are expensive here (tens of seconds each cold on kvm_pvm), so each
 * boot checks several behaviours and independent boots run concurrently.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boot, resolveBaseRootfs, type BootOptions, type LogEvent, type WarmLogEvent } from "@stasis/runtime";
import { TEST_MEMORY_MIB, assertKvm, makeUserTarball, primeWarmCache, runDirs, runVmTests, usePrivateTmpdir } from "./support/vm-env.js";

const MINUTE = 60_000;

const modes = [
  { mode: "cold", warm: false },
  { mode: "warm", warm: true },
] as const;

describe.skipIf(!runVmTests).each(modes)("boot() on KVM, $mode", ({ mode, warm }) => {
  let base: string;
  let userTarball: string;
  const dirsBefore = new Set<string>();
  let restoreTmpdir: (() => void) | undefined;
  let savedWarmDir: string | undefined;
  const warmEvents: WarmLogEvent["event"][] = [];

  /** boot() the way this mode boots; in warm mode every boot must be a cache hit. */
  const bootHere = (opts: BootOptions) =>
    boot({
      memory: TEST_MEMORY_MIB,
      ...opts,
      warm,
      onLog: (e: LogEvent) => {
        if (e.source === "warm") warmEvents.push(e.event);
        opts.onLog?.(e);
      },
    });

  beforeAll(async () => {
    assertKvm();
    restoreTmpdir = usePrivateTmpdir();
    savedWarmDir = process.env.STASIS_WARM_DIR;
    process.env.STASIS_WARM_DIR = mkdtempSync(path.join(os.tmpdir(), "warm-cache-"));
    base = resolveBaseRootfs();
    userTarball = makeUserTarball("from-user-tarball");
    if (warm) {
      // One cold boot per VM shape used below fills the cache.
      // (vmmEnv is part of a shape: the VMM's environment could change the guest.)
      const shapes: BootOptions[] = [
        { image: base, vmmEnv: { STASIS_SHOULD_NOT_LEAK: "x" } },
        { image: base },
        { image: base, cpus: 2 },
        { image: userTarball },
      ];
      await primeWarmCache(shapes.map((s) => ({ memory: TEST_MEMORY_MIB, ...s })));
    }
    for (const d of runDirs()) dirsBefore.add(d);
  }, 10 * MINUTE);

  afterAll(() => {
    if (warm) expect(warmEvents.length > 0 && warmEvents.every((e) => e === "hit")).toBe(true);
    else expect(warmEvents).toEqual([]);
    if (savedWarmDir === undefined) delete process.env.STASIS_WARM_DIR;
    else process.env.STASIS_WARM_DIR = savedWarmDir;
    if (userTarball) rmSync(path.dirname(userTarball), { recursive: true, force: true });
    restoreTmpdir?.();
  });

  it("streams stdout and stderr apart, applies env and cwd, and returns the exit status (B1, B2, B7, B9)", async () => {
    const stdout: Buffer[] = [];
    const events: LogEvent[] = [];
    const vm = await bootHere({
      image: base,
      cmd: ["/bin/sh", "-c", 'echo hello; echo oops >&2; echo "A=$A"; pwd; exit 3'],
      env: { A: "1" },
      guestCwd: "/tmp",
      memory: TEST_MEMORY_MIB,
      vmmEnv: { STASIS_SHOULD_NOT_LEAK: "x" },
      onStdout: (c) => stdout.push(c),
      onLog: (e) => events.push(e),
    });
    expect(vm.pid).toBeGreaterThan(0);
    const exit = await vm.wait();
    expect(exit.code).toBe(3);
    expect(exit.signal).toBeNull();
    expect(Buffer.concat(stdout).toString()).toBe("hello\nA=1\n/tmp\n");
    expect(await vm.output()).toBe("hello\nA=1\n/tmp\n");
    expect(await vm.errorOutput()).toContain("oops\n");
    const ids = exit.report.milestones.map((m) => m.id);
    if (mode === "cold") {
      // /init up, then (in either order) the agent listening and /init
      // waiting for the workload, then command started and exited.
      expect(ids.filter((id) => id !== 4 && id !== 5)).toEqual([1, 2, 3]);
      expect(ids.indexOf(4)).toBeGreaterThan(0);
      expect(ids.indexOf(5)).toBeLessThan(ids.indexOf(2));
    } else {
      // The restored guest was past its machine half: only the workload's milestones.
      expect(ids).toEqual([2, 3]);
    }
    expect(exit.report.exit).toEqual({ reason: "guest", status: 3 });
    const phase = events.find((e) => e.source === "phase");
    expect(phase && phase.source === "phase" && phase.kind).toBe("boot");
  });

  it("boots two VMs at once: a missing command exits 127, a signal death 128+9 (B2)", async () => {
    const [missing, killed] = await Promise.all([
      bootHere({ image: base, cmd: ["/no/such/command"], memory: TEST_MEMORY_MIB, cpus: 2 }),
      bootHere({ image: base, cmd: ["/bin/sh", "-c", "echo before; kill -9 $$; echo after"], memory: TEST_MEMORY_MIB }),
    ]);
    expect(missing.pid).not.toBe(killed.pid);
    const [a, b] = await Promise.all([missing.wait(), killed.wait()]);
    expect(a.code).toBe(127);
    expect(b.code).toBe(137);
    expect(await killed.output()).toBe("before\n");
  });

  it("boots a user tarball; guest writes do not reach the cached image; a forced power-off ends the VM (B15, B20)", async () => {
    const run = (script: string) =>
      bootHere({ image: userTarball, cmd: ["/bin/sh", "-c", script], memory: TEST_MEMORY_MIB, timeoutMs: 240_000 }).then(async (vm) => ({
        exit: await vm.wait(),
        out: await vm.output(),
      }));
    const first = await run("cat /marker; echo changed > /marker; cat /marker");
    expect(first.exit.code).toBe(0);
    expect(first.out).toBe("from-user-tarball\nchanged\n");
    // The workload powers the machine off itself: the VM ends (status 0), it does not hang halted.
    const second = await run("cat /marker; poweroff -f; echo unreachable");
    expect(second.out).toBe("from-user-tarball\n");
    expect(second.exit.code).toBe(0);
  });

  it("leaves no run directory or VMM process behind (B31)", () => {
    const leaked = runDirs().filter((d) => !dirsBefore.has(d));
    expect(leaked).toEqual([]);
  });

  it("stop() ends a running VM and cleans up", async () => {
    const vm = await bootHere({ image: base, cmd: ["/bin/sh", "-c", "while :; do sleep 1; done"], memory: TEST_MEMORY_MIB });
    await vm.stop({ graceMs: 5000 });
    expect(() => process.kill(vm.pid, 0)).toThrow();
    const exit = await vm.wait();
    expect(exit.report.exit?.reason).toBe("shutdown");
  });
});
