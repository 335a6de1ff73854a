import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import { VsockSecrets } from "./secrets.js";
import { FakeAgent } from "./testing/fake-agent.js";
import { VsockWinsize } from "./winsize.js";

describe("VsockSecrets (B144, B145)", () => {
  let agent: FakeAgent;
  beforeEach(async () => {
    agent = await FakeAgent.start();
  });
  afterEach(async () => {
    await agent.close();
  });

  it("sends the pairs in one secrets request; the agent ignores invalid keys", async () => {
    await VsockSecrets.send(agent.udsPath, { API_KEY: "s3cr=t value", "bad-key": "x", _B: "" });
    expect(agent.sessions[0]!.request).toEqual({ op: "secrets", secrets: { API_KEY: "s3cr=t value", "bad-key": "x", _B: "" } });
    expect(agent.secrets).toEqual({ API_KEY: "s3cr=t value", _B: "" });
  });

  it("a value with a newline or NUL → SECRETS_VALUE_INVALID and nothing is sent", async () => {
    for (const value of ["a\nb", "a\0b"]) {
      const err = await VsockSecrets.send(agent.udsPath, { OK: "fine", BAD: value }).catch((e) => e);
      expect(isStasisError(err, "SECRETS_VALUE_INVALID")).toBe(true);
      expect(err.retryable).toBe(false);
      expect(String(err.message)).not.toContain(value);
    }
    expect(agent.connects).toBe(0);
  });

  it("an unreachable agent → SECRETS_AGENT_UNAVAILABLE (retryable) within timeoutMs", async () => {
    agent.ready = false;
    const t0 = Date.now();
    const err = await VsockSecrets.send(agent.udsPath, { A: "1" }, { timeoutMs: 300, retryMs: 50 }).catch((e) => e);
    expect(isStasisError(err, "SECRETS_AGENT_UNAVAILABLE")).toBe(true);
    expect(err.retryable).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it("an agent that never answers → SECRETS_AGENT_UNAVAILABLE at the deadline", async () => {
    agent.behaviour = () => {};
    const err = await VsockSecrets.send(agent.udsPath, { A: "1" }, { timeoutMs: 300 }).catch((e) => e);
    expect(isStasisError(err, "SECRETS_AGENT_UNAVAILABLE")).toBe(true);
  });
});

describe("VsockWinsize (B145, B146)", () => {
  let agent: FakeAgent;
  beforeEach(async () => {
    agent = await FakeAgent.start();
  });
  afterEach(async () => {
    await agent.close();
  });

  it("opens a winsize session and drops a send identical to the last", async () => {
    const w = await VsockWinsize.connect(agent.udsPath);
    w.send(80, 24);
    w.send(80, 24);
    w.send(100, 40);
    w.send(100, 40);
    w.send(80, 24);
    w.close();
    w.send(1, 1); // after close: ignored
    const s = await (async () => {
      while (agent.sessions.length === 0) await new Promise((r) => setTimeout(r, 5));
      return agent.sessions[0]!;
    })();
    await s.closed;
    expect(s.request).toEqual({ op: "winsize" });
    expect(s.winsizes).toEqual([[80, 24], [100, 40], [80, 24]]);
  });

  it("an unreachable agent → WINSIZE_AGENT_UNAVAILABLE (retryable)", async () => {
    agent.ready = false;
    const err = await VsockWinsize.connect(agent.udsPath, { timeoutMs: 300, retryMs: 50 }).catch((e) => e);
    expect(isStasisError(err, "WINSIZE_AGENT_UNAVAILABLE")).toBe(true);
    expect(err.retryable).toBe(true);
  });

  it("sends after the agent closed the session are dropped quietly", async () => {
    agent.behaviour = (s) => s.fail("EBUSY", "busy");
    const w = await VsockWinsize.connect(agent.udsPath);
    while (!w.isClosed) await new Promise((r) => setTimeout(r, 5));
    expect(() => w.send(10, 10)).not.toThrow();
    w.close();
  });
});
