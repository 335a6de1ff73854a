import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import type { LogEvent } from "../log/events.js";
import { createExecApi, type ExecExitError } from "./exec-api.js";
import { FakeAgent } from "./testing/fake-agent.js";

describe("createExecApi", () => {
  let agent: FakeAgent;
  beforeEach(async () => {
    agent = await FakeAgent.start();
  });
  afterEach(async () => {
    await agent.close();
  });

  it("exec throws EXEC_NONZERO_EXIT with the exit code, output and a stderr tail; execRaw returns it (B50)", async () => {
    const api = createExecApi(agent.udsPath);
    expect(await api.exec("echo hi")).toEqual({ exitCode: 0, stdout: "hi\n", stderr: "" });
    const err = (await api.exec("echo out; echo 'it broke' >&2; exit 3").catch((e) => e)) as ExecExitError;
    expect(isStasisError(err, "EXEC_NONZERO_EXIT")).toBe(true);
    expect(err.name).toBe("ExecError");
    expect(err.exitCode).toBe(3);
    expect(err.stdout).toBe("out\n");
    expect(err.stderr).toBe("it broke\n");
    expect(err.message).toMatch(/status 3.*it broke/s);
    expect((await api.execRaw("exit 3")).exitCode).toBe(3);
  });

  it("keeps a stderr tail for the message even when onStderr took the stream", async () => {
    const api = createExecApi(agent.udsPath);
    const err = (await api.exec("echo nope >&2; exit 1", { onStderr: () => {} }).catch((e) => e)) as ExecExitError;
    expect(err.stderr).toBe("");
    expect(err.message).toMatch(/nope/);
  });

  it("tees exec-stdout / exec-stderr chunks to onLog with cmd, without changing buffering (B56)", async () => {
    const events: LogEvent[] = [];
    const api = createExecApi(agent.udsPath, (e) => events.push(e));
    const cmd = "echo a; echo b >&2";
    const r = await api.exec(cmd);
    expect(r).toEqual({ exitCode: 0, stdout: "a\n", stderr: "b\n" });
    const text = (src: string) =>
      Buffer.concat(events.flatMap((e) => (e.source === src && "chunk" in e ? [e.chunk] : []))).toString();
    expect(text("exec-stdout")).toBe("a\n");
    expect(text("exec-stderr")).toBe("b\n");
    expect(events.every((e) => "cmd" in e && e.cmd === cmd)).toBe(true);

    const got: Buffer[] = [];
    const r2 = await api.execRaw("echo c", { onStdout: (c) => got.push(c) });
    expect(r2.stdout).toBe("");
    expect(Buffer.concat(got).toString()).toBe("c\n");
    expect(text("exec-stdout")).toBe("a\nc\n");
  });

  it("writeFile and execPty go through the same socket", async () => {
    const api = createExecApi(agent.udsPath);
    const out = await import("node:os").then((os) => `${os.tmpdir()}/stasis-api-${process.pid}-${Date.now()}`);
    await api.writeFile(`${out}/f`, "data");
    expect((await api.exec(`cat ${out}/f; rm -r ${out}`)).stdout).toBe("data");
    const h = api.execPty("sh", { cols: 80, rows: 24, stdin: new PassThrough().end(), stdout: new PassThrough() });
    expect(await h.result).toEqual({ exitCode: 0 });
  });

  it("without a socket path every call fails with EXEC_VSOCK_UNAVAILABLE (B54)", async () => {
    const api = createExecApi(undefined);
    for (const p of [api.exec("true"), api.execRaw("true"), api.writeFile("/f", "x")]) {
      const err = await p.catch((e) => e);
      expect(isStasisError(err, "EXEC_VSOCK_UNAVAILABLE")).toBe(true);
      expect(err.retryable).toBe(false);
    }
    const h = api.execPty("", { cols: 80, rows: 24, stdin: new PassThrough(), stdout: new PassThrough() });
    h.resize(1, 2);
    h.cancel();
    expect(isStasisError(await h.result.catch((e) => e), "EXEC_VSOCK_UNAVAILABLE")).toBe(true);
  });
});
