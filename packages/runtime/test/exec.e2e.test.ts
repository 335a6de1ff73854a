/**
 * End-to-end: talking to running VMs through the vsock bridge and the guest
 * agent (exec, stdin, PTY, files, secrets), detached boots, attach from
 * another process, the registry and stop. Two VMs serve the whole file; they
 * boot concurrently (a boot costs ~25 s on kvm_pvm).
 * B23–B29, B33, B35, B39, B41, B46, B49–B59, B62–B66, B144.
 */
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  VsockFiles,
  VsockSecrets,
  attach,
  boot,
  isStasisError,
  list,
  resolveBaseRootfs,
  stopVm,
  type LogEvent,
  type VmHandle,
} from "@stasis/runtime";
import { TEST_MEMORY_MIB, assertKvm, primeWarmCache, registryLeftovers, runDirs, runVmTests, usePrivateTmpdir, vmmProcesses } from "./support/vm-env.js";

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return isStasisError(e) ? e.code : String(e);
  }
}

const modes = [
  { mode: "cold", warm: false },
  { mode: "warm", warm: true },
] as const;

// Every behaviour on a cold-booted and on a warm-booted VM (docs/warm-boot.md:
// the guest cannot tell them apart), except the throughput checks, which test
// the agent and the bridge rather than how the VM came up: those run once.
describe.skipIf(!runVmTests).each(modes)("exec, files, registry on running VMs, $mode", ({ mode, warm }) => {
  const name = `worker-${mode}-${process.pid}`;
  const stubbornName = `stubborn-${mode}/${process.pid}`;
  const warmEvents: string[] = [];
  const onLog = (e: LogEvent) => e.source === "warm" && warmEvents.push(e.event);
  let vm: VmHandle; // detached, shared by most tests
  let stubborn: VmHandle; // foreground, ignores SIGTERM, later detached
  let restoreTmpdir: (() => void) | undefined;
  let privateTmp: string;

  beforeAll(async () => {
    assertKvm();
    restoreTmpdir = usePrivateTmpdir();
    privateTmp = os.tmpdir();
    const base = resolveBaseRootfs();
    if (warm) await primeWarmCache([{ image: base, memory: TEST_MEMORY_MIB }]);
    [vm, stubborn] = await Promise.all([
      boot({ image: base, cmd: ["/bin/sh", "-c", "echo worker-up >&2; exec sleep 100000"], name, detached: true, memory: TEST_MEMORY_MIB, warm, onLog }),
      boot({
        image: base,
        // An ignored signal stays ignored across exec: sleep ignores SIGTERM too, and the guest idles.
        cmd: ["/bin/sh", "-c", "trap '' TERM; exec sleep 100000"],
        name: stubbornName,
        memory: TEST_MEMORY_MIB,
        timeoutMs: null,
        warm,
        onLog,
      }),
    ]);
    expect(warmEvents).toEqual(warm ? ["hit", "hit"] : []);
  }, 600_000);

  afterAll(async () => {
    for (const h of [vm, stubborn]) await h?.kill().catch(() => {});
    restoreTmpdir?.();
  });

  it("a detached boot is registered, logged and listed from another view of the registry (B23, B33, B35)", () => {
    const entry = list().find((e) => e.name === name);
    expect(entry).toBeDefined();
    expect(entry!.pid).toBe(vm.pid);
    expect(entry!.detached).toBe(true);
    expect(entry!.bootLogPath).toBe(path.join(process.env.STASIS_DETACHED_LOG_DIR!, `${vm.pid}.boot.log`));
    expect(existsSync(entry!.socketPath)).toBe(true);
    expect(list().find((e) => e.name === stubbornName)?.pid).toBe(stubborn.pid);
  });

  it("exec returns output and status; non-zero exit throws from exec, is returned by execRaw (B49, B50)", async () => {
    expect(await vm.exec("echo hi")).toEqual({ exitCode: 0, stdout: "hi\n", stderr: "" });
    const raw = await vm.execRaw("echo out; echo err >&2; exit 4");
    expect(raw).toMatchObject({ exitCode: 4, stdout: "out\n", stderr: "err\n" });
    let thrown: unknown;
    try {
      await vm.exec("echo out; echo err >&2; exit 4");
    } catch (e) {
      thrown = e;
    }
    expect(isStasisError(thrown, "EXEC_NONZERO_EXIT")).toBe(true);
    expect((await vm.execRaw("kill -9 $$")).exitCode).toBe(137);
    expect((await vm.execRaw("/no/such/program")).exitCode).toBe(127);
    const envCwd = await vm.exec('echo "$A"; pwd', { env: { A: "from-exec" }, cwd: "/tmp" });
    expect(envCwd.stdout).toBe("from-exec\n/tmp\n");
  });

  it("stdin flows into the command, binary-safe (stdin)", async () => {
    expect((await vm.exec("cat", { stdin: "data\n" })).stdout).toBe("data\n");
    const blob = randomBytes(3 * MiB);
    const r = await vm.exec("sha256sum", { stdin: Readable.from([blob.subarray(0, MiB), blob.subarray(MiB)]) });
    expect(r.stdout.split(" ")[0]).toBe(sha256(blob));
  });

  if (mode === "warm") {
    it("64 execs at once on one VM keep their outputs apart (B57)", async () => {
      const results = await Promise.all(
        Array.from({ length: 64 }, (_, i) => vm.execRaw(`echo start-${i}; echo err-${i} >&2; echo end-${i}; exit ${i % 7}`)),
      );
      results.forEach((r, i) => {
        expect(r).toEqual({ exitCode: i % 7, stdout: `start-${i}\nend-${i}\n`, stderr: `err-${i}\n` });
      });
    });

    it("streams 256 MiB through onStdout with the host's memory flat (B51)", async () => {
      const total = 256 * MiB;
      let got = 0;
      let zeros = true;
      const rss0 = process.memoryUsage.rss();
      let peak = rss0;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 50);
      try {
        // dd writes 64 KiB at a time; the guest kernel (emulated here) pays per write.
        const r = await vm.execRaw(`dd if=/dev/zero bs=65536 count=${total / 65536} 2>/dev/null`, {
          onStdout: (c) => {
            got += c.length;
            if (zeros && c.some((b) => b !== 0)) zeros = false;
          },
          execTimeoutMs: null,
        });
        expect(r).toEqual({ exitCode: 0, stdout: "", stderr: "" });
      } finally {
        clearInterval(sampler);
      }
      expect(got).toBe(total);
      expect(zeros).toBe(true);
      expect(peak - rss0).toBeLessThan(150 * MiB);
    }, 1_800_000);

    it("writeFile is byte-exact for a 10 MiB random file and honours mode, append and recursive (B62–B65)", async () => {
      const blob = randomBytes(10 * MiB);
      await vm.writeFile("/tmp/deep/er/blob.bin", blob);
      const back: Buffer[] = [];
      await vm.exec("cat /tmp/deep/er/blob.bin", { onStdout: (c) => back.push(Buffer.from(c)) });
      expect(sha256(Buffer.concat(back))).toBe(sha256(blob));
      expect((await vm.exec("sha256sum /tmp/deep/er/blob.bin")).stdout.split(" ")[0]).toBe(sha256(blob));

      const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await vm.writeFile("/tmp/script.sh", "#!/bin/sh\necho ran\n", { mode: 0o755 });
      expect((await vm.exec("/tmp/script.sh; stat -c %a /tmp/script.sh")).stdout).toBe("ran\n755\n");
      await vm.writeFile("/tmp/log.txt", every);
      await vm.writeFile("/tmp/log.txt", "tail", { append: true });
      const log: Buffer[] = [];
      await vm.exec("cat /tmp/log.txt", { onStdout: (c) => log.push(Buffer.from(c)) });
      expect(Buffer.concat(log)).toEqual(Buffer.concat([every, Buffer.from("tail")]));
      await vm.writeFile("/tmp/log.txt", "short");
      expect((await vm.exec("cat /tmp/log.txt")).stdout).toBe("short");
      expect(await codeOf(vm.writeFile("/tmp/missing-parent/x", "x", { recursive: false }))).toBe("EXEC_NONZERO_EXIT");
    });
  }

  it("a PTY exec sees its size, follows resizes and gets Ctrl-C (B59)", async () => {
    const runPty = (cmd: string, feed: (stdin: PassThrough, h: ReturnType<VmHandle["execPty"]>) => void) => {
      const stdin = new PassThrough();
      const out: Buffer[] = [];
      const stdout = new PassThrough();
      stdout.on("data", (c: Buffer) => out.push(c));
      const h = vm.execPty(cmd, { cols: 100, rows: 30, stdin, stdout });
      feed(stdin, h);
      return h.result.then((r) => ({ ...r, out: Buffer.concat(out).toString() }));
    };
    const first = await runPty("tty; stty size", () => {});
    expect(first.exitCode).toBe(0);
    expect(first.out).toMatch(/\/dev\/pts\/\d+/);
    expect(first.out).toContain("30 100");

    const resized = await runPty("read line; stty size", (stdin, h) => {
      h.resize(120, 40);
      stdin.write("go\r");
    });
    expect(resized.out).toContain("40 120");

    const interrupted = await runPty("sleep 1000", (stdin) => setTimeout(() => stdin.write("\x03"), 3000));
    expect(interrupted.exitCode).toBe(130);
  });

  it("secrets reach later execs; a value with a newline is refused and nothing is sent (B144)", async () => {
    const socketPath = list().find((e) => e.pid === vm.pid)!.socketPath;
    expect(await codeOf(VsockSecrets.send(socketPath, { OK_KEY: "a", BAD: "line1\nline2" }))).toBe("SECRETS_VALUE_INVALID");
    await VsockSecrets.send(socketPath, { API_TOKEN: "s3cret", "not-an-identifier": "x" });
    expect((await vm.exec('echo "$API_TOKEN|$OK_KEY"')).stdout).toBe("s3cret|\n");
    expect((await vm.exec("cat /run/stasis/secrets; stat -c %a /run/stasis/secrets")).stdout).toBe("API_TOKEN=s3cret\n600\n");
  });

  it("VsockFiles pushes a host tree in and pulls it back out (B66)", async () => {
    const socketPath = list().find((e) => e.pid === vm.pid)!.socketPath;
    const src = mkdtempSync(path.join(privateTmp, "push-src-"));
    mkdirSync(path.join(src, "sub"));
    writeFileSync(path.join(src, "a.txt"), "alpha\n");
    writeFileSync(path.join(src, "sub", "b.bin"), randomBytes(4096));
    writeFileSync(path.join(src, "skip.log"), "excluded\n");
    await VsockFiles.push(socketPath, src, "/srv/tree", { excludes: ["*.log"] });
    expect((await vm.exec("cd /srv/tree && find . -type f | sort")).stdout).toBe("./a.txt\n./sub/b.bin\n");
    const dst = path.join(privateTmp, "pulled");
    await VsockFiles.pull(socketPath, "/srv/tree", dst);
    const pulledRoot = existsSync(path.join(dst, "a.txt")) ? dst : path.join(dst, "tree");
    expect(readFileSync(path.join(pulledRoot, "a.txt"), "utf8")).toBe("alpha\n");
    expect(readFileSync(path.join(pulledRoot, "sub", "b.bin"))).toEqual(readFileSync(path.join(src, "sub", "b.bin")));
    expect(await codeOf(VsockFiles.push(socketPath, path.join(src, "nope"), "/srv/x"))).toBe("FILES_HOST_DIR_NOT_FOUND");
  });

  it("another process attaches by name and execs (B28)", async () => {
    const child = path.join(path.dirname(fileURLToPath(import.meta.url)), "support", "attach-child.mjs");
    const out = execFileSync(process.execPath, [child, name], { env: process.env, encoding: "utf8", timeout: 120_000 });
    expect(JSON.parse(out)).toEqual({ pid: vm.pid, name, exitCode: 5, stdout: "from-child\n", stderr: "to-stderr\n" });
    const attached = await attach({ name });
    expect(attached.pid).toBe(vm.pid);
    expect(await attached.output()).toBe("");
    expect((await attached.exec("echo via-attach")).stdout).toBe("via-attach\n");
  });

  it("rejects bad input with its code before touching a VM", async () => {
    expect(await codeOf(boot({ image: resolveBaseRootfs(), cmd: ["true"], name }))).toBe("REGISTRY_NAME_IN_USE");
    expect(await codeOf(boot({ image: resolveBaseRootfs(), cmd: ["true"], name: "12345" }))).toBe("REGISTRY_NAME_INVALID");
    expect(await codeOf(attach({ name: "no-such-vm" }))).toBe("REGISTRY_VM_NOT_FOUND");
    expect(await codeOf(attach({ name, pid: vm.pid }))).toBe("REGISTRY_VM_NOT_FOUND");
    expect(await codeOf(attach({}))).toBe("REGISTRY_VM_NOT_FOUND");
    expect(await codeOf(vm.execRaw("sleep 60", { execTimeoutMs: 1500 }))).toBe("EXEC_AGENT_TIMEOUT");
    expect(await codeOf(stopVm({ name: "no-such-vm" }))).toBe("REGISTRY_VM_NOT_FOUND");
  });

  // A caller-provided bridge always boots cold: once is enough.
  if (mode === "cold") {
    it("a VM whose caller preset STASIS_VSOCK has no exec (B54)", async () => {
      const callersBridge = path.join(privateTmp, "callers-bridge.sock");
      const other = await boot({
        image: resolveBaseRootfs(),
        cmd: ["sleep", "1000"],
        memory: TEST_MEMORY_MIB,
        vmmEnv: { STASIS_VSOCK: callersBridge },
      });
      try {
        expect(await codeOf(other.exec("true"))).toBe("EXEC_VSOCK_UNAVAILABLE");
      } finally {
        await other.kill();
        rmSync(callersBridge, { force: true }); // the caller's own bridge: a killed VMM cannot remove it
      }
    });
  }

  it("detach() leaves a VM running and attachable; stop escalates to SIGKILL when the guest ignores SIGTERM (B39, B46)", async () => {
    await stubborn.detach();
    const again = await attach({ name: stubbornName });
    expect((await again.exec("echo still-here")).stdout).toBe("still-here\n");
    const t0 = Date.now();
    const r = await stopVm({ name: stubbornName });
    expect(r).toMatchObject({ pid: stubborn.pid, signal: "SIGTERM", escalated: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect(r.gc?.registryRemoved).toBe(true);
  });

  it("stop ends a well-behaved detached VM and leaves nothing behind (B39, B41)", async () => {
    const logPath = path.join(process.env.STASIS_DETACHED_LOG_DIR!, `${vm.pid}.boot.log`);
    expect(readFileSync(logPath, "utf8")).toContain("worker-up");
    const r = await stopVm({ name }, { graceMs: 10_000 });
    expect(r).toMatchObject({ pid: vm.pid, signal: "SIGTERM", escalated: false });
    expect(list()).toEqual([]);
    expect(registryLeftovers()).toEqual([]);
    expect(existsSync(logPath)).toBe(false);
    expect(vmmProcesses(privateTmp)).toEqual([]);
    expect(runDirs()).toEqual([]);
    const sockets = readdirSync(privateTmp, { recursive: true }).map(String).filter((p) => p.endsWith(".sock"));
    expect(sockets).toEqual([]);
  });
});
