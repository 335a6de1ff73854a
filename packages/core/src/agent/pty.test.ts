import path from "node:path";
import os from "node:os";
import { PassThrough, Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import { VsockExec } from "./exec.js";
import { MAX_FRAME_PAYLOAD } from "./frames.js";
import { FakeAgent } from "./testing/fake-agent.js";

function collector(): Writable & { text(): string; bytes(): Buffer } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return Object.assign(w, { bytes: () => Buffer.concat(chunks), text: () => Buffer.concat(chunks).toString() });
}

const until = async (cond: () => boolean, ms = 2000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe("VsockExec.startPty (B59)", () => {
  let agent: FakeAgent;
  beforeEach(async () => {
    agent = await FakeAgent.start();
  });
  afterEach(async () => {
    await agent.close();
  });

  it("asks for a pty; '' means an interactive shell (no cmd)", async () => {
    const stdin = new PassThrough();
    const h = VsockExec.startPty(agent.udsPath, "", { cols: 120, rows: 40, stdin, stdout: collector() });
    expect(typeof h.resize).toBe("function");
    stdin.end();
    expect(await h.result).toEqual({ exitCode: 0 });
    expect(agent.sessions[0]!.request).toEqual({ op: "exec", pty: { cols: 120, rows: 40, term: "xterm-256color" } });

    const h2 = VsockExec.startPty(agent.udsPath, "top", {
      cols: 80, rows: 24, stdin: new PassThrough().end(), stdout: collector(), term: "vt100", env: { A: "1" }, cwd: "/tmp",
    });
    await h2.result;
    expect(agent.sessions[1]!.request).toEqual({
      op: "exec", cmd: "top", env: { A: "1" }, cwd: "/tmp", pty: { cols: 80, rows: 24, term: "vt100" },
    });
  });

  it("types input as I frames (split at 64 KiB) and writes output to stdout", async () => {
    const stdin = new PassThrough();
    const stdout = collector();
    const h = VsockExec.startPty(agent.udsPath, "sh", { cols: 80, rows: 24, stdin, stdout });
    stdin.write("ls\r");
    const big = Buffer.alloc(MAX_FRAME_PAYLOAD + 100, 0x62);
    stdin.write(big);
    stdin.end();
    expect(await h.result).toEqual({ exitCode: 0 });
    const s = agent.sessions[0]!;
    expect(s.inputs.map((b) => b.length)).toEqual([3, MAX_FRAME_PAYLOAD, 100, 0]);
    expect(stdout.bytes().equals(Buffer.concat([Buffer.from("ls\r"), big]))).toBe(true);
  });

  it("reports the exit code and signal from the exit frame", async () => {
    agent.behaviour = (s) => (s.accept(), s.send("O", "bye"), s.exit(130, 2));
    const stdout = collector();
    const h = VsockExec.startPty(agent.udsPath, "x", { cols: 1, rows: 1, stdin: new PassThrough(), stdout });
    expect(await h.result).toEqual({ exitCode: 130, signal: 2 });
    expect(stdout.text()).toBe("bye");
  });

  it("resize sends W frames and drops a size identical to the last", async () => {
    const stdin = new PassThrough();
    const h = VsockExec.startPty(agent.udsPath, "sh", { cols: 80, rows: 24, stdin, stdout: collector() });
    h.resize(80, 24); // same as the initial size: dropped
    await until(() => agent.sessions.length === 1);
    await new Promise((r) => setTimeout(r, 20));
    h.resize(100, 30);
    h.resize(100, 30);
    h.resize(101, 30);
    h.resize(80, 24);
    await until(() => agent.sessions[0]!.winsizes.length >= 3);
    stdin.end();
    await h.result;
    expect(agent.sessions[0]!.winsizes).toEqual([[100, 30], [101, 30], [80, 24]]);
  });

  it("a resize before the connection is up is sent once connected", async () => {
    const h = VsockExec.startPty(agent.udsPath, "sh", { cols: 80, rows: 24, stdin: new PassThrough(), stdout: collector() });
    h.resize(90, 25);
    await until(() => (agent.sessions[0]?.winsizes.length ?? 0) === 1);
    expect(agent.sessions[0]!.winsizes).toEqual([[90, 25]]);
    h.cancel();
    await h.result;
  });

  it("cancel closes the connection; result resolves as SIGHUP (129)", async () => {
    const stdin = new PassThrough();
    const h = VsockExec.startPty(agent.udsPath, "sh", { cols: 80, rows: 24, stdin, stdout: collector() });
    await until(() => agent.sessions.length === 1);
    h.cancel();
    await agent.sessions[0]!.closed;
    expect(await h.result).toEqual({ exitCode: 129, signal: 1 });
    expect(stdin.listenerCount("data")).toBe(0);
    // cancel before connecting settles too
    const h2 = VsockExec.startPty(agent.udsPath, "sh", { cols: 80, rows: 24, stdin: new PassThrough(), stdout: collector() });
    h2.cancel();
    expect(await h2.result).toEqual({ exitCode: 129, signal: 1 });
  });

  it("honours stdout backpressure", async () => {
    const total = 8 * 1024 * 1024;
    agent.behaviour = async (s) => {
      s.accept();
      await s.sendStream("O", Buffer.alloc(total, 0x41));
      s.exit(0);
    };
    let got = 0;
    let maxBuffered = 0;
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        got += chunk.length;
        maxBuffered = Math.max(maxBuffered, slow.writableLength);
        setTimeout(cb, 0);
      },
    });
    const h = VsockExec.startPty(agent.udsPath, "cat big", { cols: 80, rows: 24, stdin: new PassThrough(), stdout: slow });
    await h.result;
    await until(() => got === total, 10_000);
    expect(maxBuffered).toBeLessThan(1024 * 1024);
  });

  it("does not retry: an unreachable socket fails with EXEC_AGENT_UNAVAILABLE", async () => {
    agent.ready = false;
    const t0 = Date.now();
    const h = VsockExec.startPty(agent.udsPath, "sh", { cols: 80, rows: 24, stdin: new PassThrough(), stdout: collector() });
    const err = await h.result.catch((e: unknown) => e);
    expect(isStasisError(err, "EXEC_AGENT_UNAVAILABLE")).toBe(true);
    expect(agent.connects).toBe(1);
    expect(Date.now() - t0).toBeLessThan(1000);

    const missing = path.join(os.tmpdir(), "stasis-no-such-dir", "vsock.sock");
    const h2 = VsockExec.startPty(missing, "sh", { cols: 80, rows: 24, stdin: new PassThrough(), stdout: collector() });
    const err2 = await h2.result.catch((e: unknown) => e);
    expect(isStasisError(err2, "EXEC_AGENT_UNAVAILABLE")).toBe(true);
  });
});
