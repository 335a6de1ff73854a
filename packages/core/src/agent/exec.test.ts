import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import { VsockExec } from "./exec.js";
import { MAX_FRAME_PAYLOAD, encodeFrame } from "./frames.js";
import { FakeAgent, type FakeSession } from "./testing/fake-agent.js";

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

describe("VsockExec.run", () => {
  let agent: FakeAgent;
  beforeEach(async () => {
    agent = await FakeAgent.start();
  });
  afterEach(async () => {
    await agent.close();
  });

  it("returns stdout, stderr and the exit code (B49)", async () => {
    const r = await VsockExec.run(agent.udsPath, "echo hi");
    expect(r).toEqual({ exitCode: 0, stdout: "hi\n", stderr: "" });
    expect(agent.sessions[0]!.request).toEqual({ op: "exec", cmd: "echo hi" });
  });

  it("keeps stdout and stderr apart and never throws on a non-zero exit", async () => {
    const r = await VsockExec.run(agent.udsPath, "echo out; echo err >&2; echo out2; exit 7");
    expect(r).toEqual({ exitCode: 7, stdout: "out\nout2\n", stderr: "err\n" });
  });

  it("reports a signal death as 128+n with the signal", async () => {
    const r = await VsockExec.run(agent.udsPath, "kill -9 $$");
    expect(r.exitCode).toBe(137);
    expect(r.signal).toBe(9);
  });

  it("decodes UTF-8 split across frames", async () => {
    agent.behaviour = (s) => {
      s.accept();
      const bytes = Buffer.from("héllo €", "utf8");
      for (const b of bytes) s.send("O", Buffer.from([b]));
      s.exit(0);
    };
    expect((await VsockExec.run(agent.udsPath, "x")).stdout).toBe("héllo €");
  });

  it("passes env and cwd", async () => {
    const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), "stasis-exec-cwd-")));
    try {
      const r = await VsockExec.run(agent.udsPath, 'echo "$FOO"; pwd', { env: { FOO: "bar baz" }, cwd: dir });
      expect(r.stdout).toBe(`bar baz\n${dir}\n`);
      expect(agent.sessions[0]!.request).toMatchObject({ env: { FOO: "bar baz" }, cwd: dir });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an agent that cannot start the command (F, e.g. missing cwd) → EXEC_NONZERO_EXIT", async () => {
    const err = await rejection(VsockExec.run(agent.udsPath, "true", { cwd: "/no/such/dir" }));
    expect(isStasisError(err, "EXEC_NONZERO_EXIT")).toBe(true);
    expect(String((err as Error).message)).toMatch(/ENOENT/);
  });

  it("a busy agent (F EBUSY) → EXEC_AGENT_UNAVAILABLE, retryable", async () => {
    agent.behaviour = (s) => s.fail("EBUSY", "256 sessions");
    const err = await rejection(VsockExec.run(agent.udsPath, "true"));
    expect(isStasisError(err, "EXEC_AGENT_UNAVAILABLE")).toBe(true);
    expect((err as { retryable: boolean }).retryable).toBe(true);
  });

  it("a hostile failure frame cannot reach the host's output raw: controls escaped, length capped, odd names replaced", async () => {
    agent.behaviour = (s) => s.fail("bad\u001b[2Jname", `\u001b]0;owned\u0007\nfake line${"x".repeat(5000)}`);
    const message = String(((await rejection(VsockExec.run(agent.udsPath, "true"))) as Error).message);
    expect(message).toContain("EGUEST: \\x1b]0;owned\\x07\\x0afake line");
    expect(message).not.toMatch(/[\u0000-\u001f]/);
    expect(message.length).toBeLessThan(1000);
  });

  describe("stdin", () => {
    it("is /dev/null without the option", async () => {
      const r = await VsockExec.run(agent.udsPath, "cat; echo done");
      expect(r.stdout).toBe("done\n");
      expect(agent.sessions[0]!.request.stdin).toBeUndefined();
    });

    it("takes a string or a Buffer, then an empty I frame", async () => {
      expect((await VsockExec.run(agent.udsPath, "cat", { stdin: "abc\n" })).stdout).toBe("abc\n");
      const bin = Buffer.from([0, 1, 2, 255, 10, 13]);
      const r = await VsockExec.run(agent.udsPath, "od -An -tx1", { stdin: bin });
      expect(r.stdout.trim().split(/\s+/)).toEqual(["00", "01", "02", "ff", "0a", "0d"]);
      const s = agent.sessions[1]!;
      expect(s.request.stdin).toBe(true);
      expect(s.inputs.at(-1)!.length).toBe(0);
    });

    it("streams a Readable with backpressure, frames ≤ 64 KiB, empty chunks skipped", async () => {
      const chunk = Buffer.alloc(200_000, 0x61);
      const total = 40;
      async function* gen() {
        for (let i = 0; i < total; i++) {
          yield chunk;
          yield Buffer.alloc(0);
        }
      }
      const r = await VsockExec.run(agent.udsPath, "wc -c", { stdin: Readable.from(gen()) });
      expect(r.stdout.trim()).toBe(String(chunk.length * total));
      const s = agent.sessions[0]!;
      expect(s.inputs.every((b) => b.length <= MAX_FRAME_PAYLOAD)).toBe(true);
      expect(s.inputs.filter((b) => b.length === 0)).toHaveLength(1);
    });

    it("accepts string and Uint8Array chunks from a Readable", async () => {
      const r = await VsockExec.run(agent.udsPath, "cat", { stdin: Readable.from(["ab", new Uint8Array([99, 100])]) });
      expect(r.stdout).toBe("abcd");
    });

    it("stops feeding stdin once the command has exited", async () => {
      const endless = new Readable({ read() { this.push(Buffer.alloc(65536, 1)); } });
      const r = await VsockExec.run(agent.udsPath, "head -c 10 >/dev/null; echo ok", { stdin: endless });
      expect(r.stdout).toBe("ok\n");
      expect(endless.isPaused()).toBe(true);
      endless.destroy();
    });
  });

  describe("onStdout / onStderr (B51)", () => {
    it("with onStdout: chunks through the callback, result.stdout === '', stderr still buffered", async () => {
      const got: Buffer[] = [];
      const r = await VsockExec.run(agent.udsPath, "echo a; echo b >&2", { onStdout: (c) => got.push(c) });
      expect(r).toEqual({ exitCode: 0, stdout: "", stderr: "b\n" });
      expect(Buffer.concat(got).toString()).toBe("a\n");
    });

    it("with onStderr: result.stderr === '', stdout still buffered", async () => {
      const got: Buffer[] = [];
      const r = await VsockExec.run(agent.udsPath, "echo a; echo b >&2", { onStderr: (c) => got.push(c) });
      expect(r).toEqual({ exitCode: 0, stdout: "a\n", stderr: "" });
      expect(Buffer.concat(got).toString()).toBe("b\n");
    });

    it("a throwing callback fails the run", async () => {
      const err = await rejection(
        VsockExec.run(agent.udsPath, "echo a", {
          onStdout: () => {
            throw new Error("consumer broke");
          },
        }),
      );
      expect((err as Error).message).toBe("consumer broke");
    });

    it("streams 256 MiB through onStdout with flat memory", async () => {
      const piece = Buffer.alloc(MAX_FRAME_PAYLOAD, 0x5a);
      const frames = (256 * 1024 * 1024) / MAX_FRAME_PAYLOAD;
      agent.behaviour = async (s) => {
        s.accept();
        for (let i = 0; i < frames; i++) if (!s.send("O", piece)) await s.drain();
        s.exit(0);
      };
      const before = process.memoryUsage().rss;
      let peak = before;
      let bytes = 0;
      let n = 0;
      const r = await VsockExec.run(agent.udsPath, "stream", {
        onStdout: (c) => {
          bytes += c.length;
          if (++n % 256 === 0) peak = Math.max(peak, process.memoryUsage().rss);
        },
      });
      peak = Math.max(peak, process.memoryUsage().rss);
      expect(bytes).toBe(256 * 1024 * 1024);
      expect(r.stdout).toBe("");
      expect(peak - before).toBeLessThan(150 * 1024 * 1024);
    });
  });

  it("64 parallel execs do not mix their outputs (B57)", async () => {
    const runs = Array.from({ length: 64 }, (_, i) =>
      VsockExec.run(agent.udsPath, `yes line-${i} | head -n 3000; yes err-${i} | head -n 500 >&2; exit ${i % 5}`),
    );
    const results = await Promise.all(runs);
    results.forEach((r, i) => {
      expect(r.exitCode).toBe(i % 5);
      expect(r.stdout).toBe(`line-${i}\n`.repeat(3000));
      expect(r.stderr).toBe(`err-${i}\n`.repeat(500));
    });
  });

  describe("execTimeoutMs (B52)", () => {
    it("expiry → EXEC_AGENT_TIMEOUT, retryable, and the connection is closed", async () => {
      const t0 = Date.now();
      const err = await rejection(VsockExec.run(agent.udsPath, "sleep 20", { execTimeoutMs: 200 }));
      expect(isStasisError(err, "EXEC_AGENT_TIMEOUT")).toBe(true);
      expect((err as { retryable: boolean }).retryable).toBe(true);
      expect(Date.now() - t0).toBeLessThan(2000);
      await agent.sessions[0]!.closed;
    });

    it("null and Infinity disable it", async () => {
      for (const execTimeoutMs of [null, Infinity]) {
        const r = await VsockExec.run(agent.udsPath, "sleep 0.2; echo late", { execTimeoutMs });
        expect(r.stdout).toBe("late\n");
      }
    });
  });

  describe("protocol violations (B55)", () => {
    const cases: Array<[string, (s: FakeSession) => void]> = [
      ["garbage", (s) => s.writeRaw("HTTP/1.1 400 Bad Request\r\n\r\n")],
      ["an oversize frame", (s) => (s.accept(), s.writeRaw(Buffer.from([0x4f, 0x01, 0x00, 0x01, 0x00])))],
      ["a close before the exit frame", (s) => (s.accept(), s.send("O", "partial"), s.close())],
      ["output before the accept frame", (s) => (s.send("O", "x"), s.exit(0))],
      ["a failure frame after the accept frame", (s) => (s.accept(), s.fail("EIO", "late"))],
      ["an exit frame without JSON", (s) => (s.accept(), s.writeRaw(encodeFrame("X", "zero")))],
      ["an exit frame without a code", (s) => (s.accept(), s.writeRaw(encodeFrame("X", '{"status":0}')))],
    ];
    for (const [name, behaviour] of cases) {
      it(`${name} → EXEC_PROTOCOL`, async () => {
        agent.behaviour = behaviour;
        const err = await rejection(VsockExec.run(agent.udsPath, "x"));
        expect(isStasisError(err, "EXEC_PROTOCOL")).toBe(true);
        expect((err as { retryable: boolean }).retryable).toBe(false);
      });
    }

    it("a request over 64 KiB is refused before connecting", async () => {
      const err = await rejection(VsockExec.run(agent.udsPath, "x".repeat(70_000)));
      expect(isStasisError(err, "EXEC_PROTOCOL")).toBe(true);
      expect(agent.connects).toBe(0);
    });
  });

  describe("AbortSignal", () => {
    it("abort mid-run closes the connection and rejects with an AbortError", async () => {
      const ac = new AbortController();
      const p = VsockExec.run(agent.udsPath, "sleep 20", { signal: ac.signal });
      setTimeout(() => ac.abort(new Error("user gave up")), 150);
      const err = await rejection(p);
      expect((err as Error).name).toBe("AbortError");
      expect(((err as Error).cause as Error).message).toBe("user gave up");
      await agent.sessions[0]!.closed;
    });

    it("an already-aborted signal never connects", async () => {
      const err = await rejection(VsockExec.run(agent.udsPath, "true", { signal: AbortSignal.abort() }));
      expect((err as Error).name).toBe("AbortError");
      expect(agent.connects).toBe(0);
    });

    it("abort during connect retries stops them", async () => {
      agent.ready = false;
      const ac = new AbortController();
      const t0 = Date.now();
      setTimeout(() => ac.abort(), 200);
      const err = await rejection(VsockExec.run(agent.udsPath, "true", { signal: ac.signal, retryMs: 20 }));
      expect((err as Error).name).toBe("AbortError");
      expect(Date.now() - t0).toBeLessThan(1000);
    });
  });
});

describe("VsockExec.run connecting (B53)", () => {
  it("retries until the agent's socket appears, then runs", async () => {
    const { dir, udsPath } = FakeAgent.socketPath();
    let agent: FakeAgent | undefined;
    try {
      setTimeout(() => {
        void FakeAgent.start({ dir }).then((a) => (agent = a));
      }, 300);
      const r = await VsockExec.run(udsPath, "echo up", { connectTimeoutMs: 5000, retryMs: 50 });
      expect(r.stdout).toBe("up\n");
    } finally {
      await agent?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("retries while the bridge closes before OK (agent not listening yet)", async () => {
    const agent = await FakeAgent.start({ ready: false });
    try {
      setTimeout(() => (agent.ready = true), 300);
      const r = await VsockExec.run(agent.udsPath, "echo up", { connectTimeoutMs: 5000, retryMs: 50 });
      expect(r.stdout).toBe("up\n");
      expect(agent.refused).toBeGreaterThan(1);
    } finally {
      await agent.close();
    }
  });

  it("gives up after connectTimeoutMs with EXEC_AGENT_UNAVAILABLE, retryable", async () => {
    const agent = await FakeAgent.start({ ready: false });
    try {
      for (const udsPath of [agent.udsPath, path.join(os.tmpdir(), "stasis-no-such-dir", "vsock.sock")]) {
        const t0 = Date.now();
        const err = await rejection(VsockExec.run(udsPath, "true", { connectTimeoutMs: 400, retryMs: 50 }));
        const took = Date.now() - t0;
        expect(isStasisError(err, "EXEC_AGENT_UNAVAILABLE")).toBe(true);
        expect((err as { retryable: boolean }).retryable).toBe(true);
        expect(took).toBeGreaterThanOrEqual(380);
        expect(took).toBeLessThan(1000);
      }
    } finally {
      await agent.close();
    }
  });

  it("a malformed bridge reply is EXEC_PROTOCOL, not retried", async () => {
    for (const okLine of ["NOPE\n", "x".repeat(100)]) {
      const agent = await FakeAgent.start({ okLine: () => Buffer.from(okLine) });
      try {
        const err = await rejection(VsockExec.run(agent.udsPath, "true", { connectTimeoutMs: 2000, retryMs: 50 }));
        expect(isStasisError(err, "EXEC_PROTOCOL")).toBe(true);
        expect(agent.connects).toBe(1);
      } finally {
        await agent.close();
      }
    }
  });

  it("keeps frames that arrive together with the OK line", async () => {
    const agent = await FakeAgent.start({
      okLine: () => Buffer.concat([Buffer.from("OK 7\n"), encodeFrame("A", "{}"), encodeFrame("O", "early ")]),
      behaviour: (s) => {
        s.send("O", "late");
        s.exit(3);
      },
    });
    try {
      expect(await VsockExec.run(agent.udsPath, "x")).toEqual({ exitCode: 3, stdout: "early late", stderr: "" });
    } finally {
      await agent.close();
    }
  });
});
