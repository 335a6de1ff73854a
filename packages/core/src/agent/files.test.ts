import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import { VsockFiles } from "./files.js";
import { FakeAgent } from "./testing/fake-agent.js";

// The fake agent runs exec requests with the host's /bin/sh, so "guest"
// paths here are host temp paths and the guest-side tar is the host's tar.
describe("VsockFiles (B66)", () => {
  let agent: FakeAgent;
  let root: string;
  let host: string;
  beforeEach(async () => {
    agent = await FakeAgent.start();
    root = mkdtempSync(path.join(os.tmpdir(), "stasis-files-"));
    host = path.join(root, "host");
    mkdirSync(path.join(host, "sub", "deep"), { recursive: true });
    mkdirSync(path.join(host, "node_modules", "x"), { recursive: true });
    writeFileSync(path.join(host, "a.txt"), "A");
    writeFileSync(path.join(host, "sub", "deep", "b.bin"), Buffer.from([0, 1, 2, 255]));
    writeFileSync(path.join(host, "sub", "debug.log"), "log");
    writeFileSync(path.join(host, "node_modules", "x", "i.js"), "js");
    writeFileSync(path.join(host, "big"), Buffer.alloc(3 * 1024 * 1024, 0x33));
  });
  afterEach(async () => {
    await agent.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("push copies a tree (creating the target, overwriting, honouring excludes)", async () => {
    const guest = path.join(root, "guest", "target");
    mkdirSync(guest, { recursive: true });
    writeFileSync(path.join(guest, "a.txt"), "old");
    writeFileSync(path.join(guest, "keep"), "k");
    await VsockFiles.push(agent.udsPath, host, guest, { excludes: ["*.log", "node_modules"] });
    expect(readFileSync(path.join(guest, "a.txt"), "utf8")).toBe("A");
    expect(readFileSync(path.join(guest, "keep"), "utf8")).toBe("k");
    expect([...readFileSync(path.join(guest, "sub", "deep", "b.bin"))]).toEqual([0, 1, 2, 255]);
    expect(readFileSync(path.join(guest, "big")).length).toBe(3 * 1024 * 1024);
    expect(existsSync(path.join(guest, "sub", "debug.log"))).toBe(false);
    expect(existsSync(path.join(guest, "node_modules"))).toBe(false);
    const s = agent.sessions[0]!;
    expect(s.request).toMatchObject({ op: "exec", stdin: true });
    expect(String(s.request.cmd)).toMatch(/^mkdir -p '.*' && tar -xof - -C '.*'$/);

    const fresh = path.join(root, "new", "dir");
    await VsockFiles.push(agent.udsPath, host, fresh);
    expect(readFileSync(path.join(fresh, "sub", "debug.log"), "utf8")).toBe("log");
  });

  it("pull copies a directory's contents (or a file) into a created host dir, honouring excludes", async () => {
    const out = path.join(root, "out", "here");
    await VsockFiles.pull(agent.udsPath, host, out, { excludes: ["*.log"] });
    expect(readFileSync(path.join(out, "a.txt"), "utf8")).toBe("A");
    expect(readFileSync(path.join(out, "big")).length).toBe(3 * 1024 * 1024);
    expect(existsSync(path.join(out, "sub", "debug.log"))).toBe(false);
    expect(existsSync(path.join(out, "node_modules", "x", "i.js"))).toBe(true);

    const one = path.join(root, "one");
    await VsockFiles.pull(agent.udsPath, path.join(host, "sub", "deep", "b.bin"), one);
    expect([...readFileSync(path.join(one, "b.bin"))]).toEqual([0, 1, 2, 255]);
  });

  it("a missing guest path → EXEC_NONZERO_EXIT with tar's stderr", async () => {
    const err = await VsockFiles.pull(agent.udsPath, path.join(root, "nope"), path.join(root, "o")).catch((e) => e);
    expect(isStasisError(err, "EXEC_NONZERO_EXIT")).toBe(true);
    expect(String(err.message)).toMatch(/nope/);
  });

  it("a missing host dir → FILES_HOST_DIR_NOT_FOUND, nothing sent", async () => {
    for (const dir of [path.join(root, "missing"), path.join(host, "a.txt")]) {
      const err = await VsockFiles.push(agent.udsPath, dir, "/x").catch((e) => e);
      expect(isStasisError(err, "FILES_HOST_DIR_NOT_FOUND")).toBe(true);
    }
    expect(agent.connects).toBe(0);
  });

  it("an unreachable agent → FILES_AGENT_UNAVAILABLE (retryable) within timeoutMs (B145)", async () => {
    agent.ready = false;
    const t0 = Date.now();
    const err = await VsockFiles.push(agent.udsPath, host, "/x", { timeoutMs: 300, retryMs: 50 }).catch((e) => e);
    expect(isStasisError(err, "FILES_AGENT_UNAVAILABLE")).toBe(true);
    expect(err.retryable).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);
    const err2 = await VsockFiles.pull(agent.udsPath, "/x", path.join(root, "p"), { timeoutMs: 200, retryMs: 50 }).catch((e) => e);
    expect(isStasisError(err2, "FILES_AGENT_UNAVAILABLE")).toBe(true);
  });
});
