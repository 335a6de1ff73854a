import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import { MAX_FRAME_PAYLOAD } from "./frames.js";
import { FakeAgent } from "./testing/fake-agent.js";
import { WRITE_FILE_B64_CHUNK_BYTES, buildWriteFileCmd, buildWriteFileCmds, readFile, writeFile } from "./write-file.js";

const MAX_ARG_STRLEN = 128 * 1024;
const allBytes = Buffer.from(Array.from({ length: 1024 }, (_, i) => i % 256));
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("writeFile / readFile over the agent", () => {
  let agent: FakeAgent;
  let dir: string;
  beforeEach(async () => {
    agent = await FakeAgent.start();
    dir = mkdtempSync(path.join(os.tmpdir(), "stasis-writefile-"));
  });
  afterEach(async () => {
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("sends the write request and the bytes exactly, then an empty I (B63)", async () => {
    const file = path.join(dir, "a", "b", "bin");
    const content = Buffer.concat([allBytes, Buffer.from("\n'\"$(x)`\0\r\n")]);
    await writeFile(agent.udsPath, file, content);
    const s = agent.sessions[0]!;
    expect(s.request).toEqual({ op: "write", path: file, mkdirs: true, append: false });
    expect(s.inputs.at(-1)!.length).toBe(0);
    expect(s.input.equals(content)).toBe(true);
    expect(readFileSync(file).equals(content)).toBe(true);
  });

  it("splits 5 MiB into ≤ 64 KiB frames (B65)", async () => {
    const file = path.join(dir, "big");
    const content = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < content.length; i++) content[i] = (i * 31 + (i >> 10)) & 0xff;
    await writeFile(agent.udsPath, file, content);
    const s = agent.sessions[0]!;
    expect(s.inputs.length).toBe(content.length / MAX_FRAME_PAYLOAD + 1);
    expect(s.inputs.every((b) => b.length <= MAX_FRAME_PAYLOAD)).toBe(true);
    expect(sha(readFileSync(file))).toBe(sha(content));
  });

  it("mode, append, overwrite and recursive: false (B62, B64)", async () => {
    const file = path.join(dir, "x.sh");
    await writeFile(agent.udsPath, file, "#!/bin/sh\n", { mode: 0o755 });
    expect(statSync(file).mode & 0o777).toBe(0o755);
    expect(agent.sessions[0]!.request.mode).toBe(0o755);
    await writeFile(agent.udsPath, file, "echo hi\n", { append: true });
    expect(readFileSync(file, "utf8")).toBe("#!/bin/sh\necho hi\n");
    await writeFile(agent.udsPath, file, "new");
    expect(readFileSync(file, "utf8")).toBe("new");
    await writeFile(agent.udsPath, path.join(dir, "empty"), "");
    expect(readFileSync(path.join(dir, "empty")).length).toBe(0);

    const err = await writeFile(agent.udsPath, path.join(dir, "missing", "f"), "x", { recursive: false }).catch((e) => e);
    expect(isStasisError(err, "EXEC_NONZERO_EXIT")).toBe(true);
    expect(String(err.message)).toMatch(/ENOENT/);
    await expect(writeFile(agent.udsPath, file, "x", { mode: 0o10000 })).rejects.toThrow(RangeError);
  });

  it("readFile returns the bytes; a missing file → EXEC_NONZERO_EXIT", async () => {
    const file = path.join(dir, "r");
    const content = Buffer.concat([allBytes, Buffer.alloc(200_000, 9)]);
    writeFileSync(file, content);
    expect((await readFile(agent.udsPath, file)).equals(content)).toBe(true);
    expect(agent.sessions[0]!.request).toEqual({ op: "read", path: file });
    const err = await readFile(agent.udsPath, path.join(dir, "nope")).catch((e) => e);
    expect(isStasisError(err, "EXEC_NONZERO_EXIT")).toBe(true);
  });

  it("an unreachable agent → EXEC_AGENT_UNAVAILABLE", async () => {
    agent.ready = false;
    const err = await writeFile(agent.udsPath, path.join(dir, "f"), "x", { connectTimeoutMs: 200, retryMs: 50 }).catch((e) => e);
    expect(isStasisError(err, "EXEC_AGENT_UNAVAILABLE")).toBe(true);
  });
});

describe("buildWriteFileCmd(s) (api.md §3.5)", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "stasis-writecmd-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const sh = (cmd: string) => execFileSync("/bin/sh", ["-c", cmd], { stdio: ["ignore", "pipe", "pipe"] });

  it("is one line: mkdir -p, base64 -d into the target, chmod; byte-exact when run", () => {
    const file = path.join(dir, "it's a dir", "f");
    const cmd = buildWriteFileCmd(file, allBytes, { mode: 0o700 });
    expect(cmd).not.toMatch(/\n/);
    expect(cmd).toMatch(/^mkdir -p '.*' && printf '%s' '[A-Za-z0-9+/=]+' \| base64 -d > '.*' && chmod 700 '.*'$/);
    sh(cmd);
    expect(readFileSync(file).equals(allBytes)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o700);
    sh(buildWriteFileCmd(file, "tail", { append: true, recursive: false }));
    expect(readFileSync(file).subarray(-4).toString()).toBe("tail");
    expect(buildWriteFileCmd(file, "x", { recursive: false })).not.toMatch(/mkdir/);
  });

  it("one command when the base64 fits one chunk", () => {
    const small = Buffer.alloc((WRITE_FILE_B64_CHUNK_BYTES / 4) * 3, 1);
    expect(buildWriteFileCmds("/f", small)).toEqual([buildWriteFileCmd("/f", small)]);
  });

  it("5 MiB: several commands, none near MAX_ARG_STRLEN, staged under /tmp, byte-exact (B65)", () => {
    const content = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < content.length; i++) content[i] = (i * 7 + (i >> 8)) & 0xff;
    const file = path.join(dir, "sub", "big.bin");
    const cmds = buildWriteFileCmds(file, content, { mode: 0o640 });
    expect(cmds.length).toBeGreaterThan(50);
    for (const c of cmds) {
      expect(Buffer.byteLength(c)).toBeLessThan(MAX_ARG_STRLEN - 1024);
      expect(c).not.toMatch(/\n/);
    }
    expect(cmds[0]).toMatch(/ > '\/tmp\/\.stasis-writefile-[0-9a-f]+\.b64'$/);
    for (const c of cmds) sh(c);
    expect(sha(readFileSync(file))).toBe(sha(content));
    expect(statSync(file).mode & 0o777).toBe(0o640);
    const stage = /'(\/tmp\/[^']+)'/.exec(cmds[0]!)![1]!;
    expect(() => statSync(stage)).toThrow();
  });
});
