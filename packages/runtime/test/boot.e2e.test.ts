/**
 * End-to-end: boot() runs real VMs on /dev/kvm (B1, B2, B7, B9, B15, B20).
 * Boots are expensive here (tens of seconds each on kvm_pvm), so each boot
 * checks several behaviours and independent boots run concurrently.
 */
import { rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boot, resolveBaseRootfs, type LogEvent } from "@stasis/runtime";
import { TEST_MEMORY_MIB, assertKvm, makeUserTarball, runDirs, runVmTests, usePrivateTmpdir } from "./support/vm-env.js";

describe.skipIf(!runVmTests)("boot() on KVM", () => {
  let base: string;
  let userTarball: string;
  const dirsBefore = new Set<string>();
  let restoreTmpdir: (() => void) | undefined;

  beforeAll(() => {
    assertKvm();
    restoreTmpdir = usePrivateTmpdir();
    base = resolveBaseRootfs();
    userTarball = makeUserTarball("from-user-tarball");
    for (const d of runDirs()) dirsBefore.add(d);
  });

  afterAll(() => {
    if (userTarball) rmSync(path.dirname(userTarball), { recursive: true, force: true });
    restoreTmpdir?.();
  });

  it("streams stdout and stderr apart, applies env and cwd, and returns the exit status (B1, B2, B7, B9)", async () => {
    const stdout: Buffer[] = [];
    const events: LogEvent[] = [];
    const vm = await boot({
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
    // the VMM reported the guest's milestones: /init up, command started,
    // command exited, and (at some point after /init) the agent listening
    const ids = exit.report.milestones.map((m) => m.id);
    expect(ids.filter((id) => id !== 4)).toEqual([1, 2, 3]);
    expect(ids.indexOf(4)).toBeGreaterThan(0);
    expect(exit.report.exit).toEqual({ reason: "guest", status: 3 });
    const phase = events.find((e) => e.source === "phase");
    expect(phase && phase.source === "phase" && phase.kind).toBe("boot");
  });

  it("boots two VMs at once: a missing command exits 127, a signal death 128+9 (B2)", async () => {
    const [missing, killed] = await Promise.all([
      boot({ image: base, cmd: ["/no/such/command"], memory: TEST_MEMORY_MIB, cpus: 2 }),
      boot({ image: base, cmd: ["/bin/sh", "-c", "echo before; kill -9 $$; echo after"], memory: TEST_MEMORY_MIB }),
    ]);
    expect(missing.pid).not.toBe(killed.pid);
    const [a, b] = await Promise.all([missing.wait(), killed.wait()]);
    expect(a.code).toBe(127);
    expect(b.code).toBe(137);
    expect(await killed.output()).toBe("before\n");
  });

  it("boots a user tarball; guest writes do not reach the cached image; a forced power-off ends the VM (B15, B20)", async () => {
    const run = (script: string) =>
      boot({ image: userTarball, cmd: ["/bin/sh", "-c", script], memory: TEST_MEMORY_MIB, timeoutMs: 240_000 }).then(async (vm) => ({
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
    const vm = await boot({ image: base, cmd: ["/bin/sh", "-c", "while :; do sleep 1; done"], memory: TEST_MEMORY_MIB });
    await vm.stop({ graceMs: 5000 });
    expect(() => process.kill(vm.pid, 0)).toThrow();
    const exit = await vm.wait();
    expect(exit.report.exit?.reason).toBe("shutdown");
  });
});
