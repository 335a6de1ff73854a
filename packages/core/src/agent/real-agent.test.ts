/**
 * The host client against the real guest agent, run on the host:
 * `stasis-agent --listen unix:<path>` behind a TS stand-in for the VMM's
 * vsock bridge. Skipped (with the reason printed) when the binary is absent.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough, Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import { VsockExec } from "./exec.js";
import { VsockFiles } from "./files.js";
import { TestBridge, pipeTo } from "./testing/bridge.js";
import { readFile, writeFile } from "./write-file.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const agentBin = process.env.STASIS_AGENT_BIN ?? path.resolve(here, "../../../native-x64-linux/bin/stasis-agent");
const haveAgent = existsSync(agentBin);
if (!haveAgent) {
  console.warn(`real-agent tests skipped: ${agentBin} does not exist (build native/guest/agent, or set STASIS_AGENT_BIN)`);
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function waitFor(file: string, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!existsSync(file)) {
    if (Date.now() - t0 > ms) throw new Error(`${file} did not appear within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.skipIf(!haveAgent)("the real stasis-agent behind a test bridge", () => {
  let dir: string;
  let udsPath: string;
  let agent: ChildProcess;
  let bridge: TestBridge;
  let agentLog = "";

  beforeAll(async () => {
    dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), "stasis-real-agent-")));
    const agentSock = path.join(dir, "agent.sock");
    udsPath = path.join(dir, "vsock.sock");
    agent = spawn(agentBin, ["--listen", `unix:${agentSock}`], { stdio: ["ignore", "pipe", "pipe"] });
    agent.stdout!.on("data", (c: Buffer) => (agentLog += c.toString()));
    agent.stderr!.on("data", (c: Buffer) => (agentLog += c.toString()));
    await waitFor(agentSock, 5000).catch((err: Error) => {
      throw new Error(`${err.message}; agent output:\n${agentLog}`);
    });
    bridge = await TestBridge.start({ path: udsPath, accept: pipeTo(agentSock) });
  });

  afterAll(async () => {
    await bridge?.close();
    agent?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs commands: output, stderr, exit codes, signals (B49)", async () => {
    expect(await VsockExec.run(udsPath, "echo hi")).toEqual({ exitCode: 0, stdout: "hi\n", stderr: "" });
    expect(await VsockExec.run(udsPath, "echo out; echo err >&2; exit 7")).toEqual({
      exitCode: 7,
      stdout: "out\n",
      stderr: "err\n",
    });
    const killed = await VsockExec.run(udsPath, "kill -9 $$");
    expect(killed.exitCode).toBe(137);
    expect(killed.signal).toBe(9);
    expect((await VsockExec.run(udsPath, "no-such-program-here")).exitCode).toBe(127);
  });

  it("passes env and cwd; a missing cwd is EXEC_NONZERO_EXIT", async () => {
    const r = await VsockExec.run(udsPath, 'echo "$FOO"; pwd', { env: { FOO: "bar" }, cwd: dir });
    expect(r.stdout).toBe(`bar\n${dir}\n`);
    const err = await VsockExec.run(udsPath, "true", { cwd: path.join(dir, "nope") }).catch((e) => e);
    expect(isStasisError(err, "EXEC_NONZERO_EXIT")).toBe(true);
  });

  it("streams stdin in and stdout out (onStdout rule)", async () => {
    const blob = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < blob.length; i++) blob[i] = (i * 13) & 0xff;
    const r = await VsockExec.run(udsPath, "sha256sum", { stdin: Readable.from([blob.subarray(0, 1e6), blob.subarray(1e6)]) });
    expect(r.stdout.split(" ")[0]).toBe(sha(blob));
    expect((await VsockExec.run(udsPath, "cat; echo done")).stdout).toBe("done\n");
    let bytes = 0;
    const big = await VsockExec.run(udsPath, "head -c 67108864 /dev/zero; echo e >&2", { onStdout: (c) => (bytes += c.length) });
    expect(bytes).toBe(64 * 1024 * 1024);
    expect(big).toEqual({ exitCode: 0, stdout: "", stderr: "e\n" });
  });

  it("parallel execs do not mix (B57)", async () => {
    const rs = await Promise.all(Array.from({ length: 16 }, (_, i) => VsockExec.run(udsPath, `yes l${i} | head -n 2000`)));
    rs.forEach((r, i) => expect(r.stdout).toBe(`l${i}\n`.repeat(2000)));
  });

  it("execTimeoutMs → EXEC_AGENT_TIMEOUT and the command is killed", async () => {
    const marker = path.join(dir, "timeout-marker");
    const err = await VsockExec.run(udsPath, `sleep 2; touch ${marker}`, { execTimeoutMs: 300 }).catch((e) => e);
    expect(isStasisError(err, "EXEC_AGENT_TIMEOUT")).toBe(true);
    await new Promise((r) => setTimeout(r, 2500));
    expect(existsSync(marker)).toBe(false);
  });

  it("writeFile / readFile are byte-exact; mode; recursive: false fails (B62–B64)", async () => {
    const content = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.alloc(300_000, 0x41)]);
    const file = path.join(dir, "w", "deep", "f.bin");
    await writeFile(udsPath, file, content, { mode: 0o751 });
    expect(sha(readFileSync(file))).toBe(sha(content));
    expect(statSync(file).mode & 0o777).toBe(0o751);
    await writeFile(udsPath, file, "tail", { append: true });
    expect((await readFile(udsPath, file)).equals(Buffer.concat([content, Buffer.from("tail")]))).toBe(true);
    const err = await writeFile(udsPath, path.join(dir, "missing", "x"), "x", { recursive: false }).catch((e) => e);
    expect(isStasisError(err, "EXEC_NONZERO_EXIT")).toBe(true);
  });

  it("a pty exec sees its size and follows a resize (B59)", async () => {
    const stdin = new PassThrough();
    let out = "";
    const stdout = new Writable({
      write(c: Buffer, _e, cb) {
        out += c.toString();
        cb();
      },
    });
    const h = VsockExec.startPty(udsPath, "stty size; read line; stty size", { cols: 100, rows: 30, stdin, stdout });
    for (let t = 0; !out.includes("30 100"); t++) {
      if (t > 500) throw new Error(`no initial size in the pty output: ${JSON.stringify(out)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    h.resize(120, 40);
    await new Promise((r) => setTimeout(r, 100));
    stdin.write("go\r");
    expect((await h.result).exitCode).toBe(0);
    expect(out).toContain("30 100");
    expect(out).toContain("40 120");
  });

  it("cancelling a pty session ends it (the agent hangs it up)", async () => {
    const marker = path.join(dir, "cancel-marker");
    const h = VsockExec.startPty(udsPath, `sleep 2; touch ${marker}`, {
      cols: 80,
      rows: 24,
      stdin: new PassThrough(),
      stdout: new PassThrough(),
    });
    await new Promise((r) => setTimeout(r, 300));
    h.cancel();
    expect(await h.result).toEqual({ exitCode: 129, signal: 1 });
    await new Promise((r) => setTimeout(r, 2200));
    expect(existsSync(marker)).toBe(false);
  });

  it("files push and pull through tar (B66)", async () => {
    const src = path.join(dir, "src");
    mkdirSync(path.join(src, "sub"), { recursive: true });
    writeFileSync(path.join(src, "sub", "a"), "A");
    writeFileSync(path.join(src, "x.log"), "L");
    await VsockFiles.push(udsPath, src, path.join(dir, "guest"), { excludes: ["*.log"] });
    expect(readFileSync(path.join(dir, "guest", "sub", "a"), "utf8")).toBe("A");
    expect(existsSync(path.join(dir, "guest", "x.log"))).toBe(false);
    await VsockFiles.pull(udsPath, path.join(dir, "guest"), path.join(dir, "back"));
    expect(readFileSync(path.join(dir, "back", "sub", "a"), "utf8")).toBe("A");
  });
});
