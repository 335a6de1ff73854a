/** `stasis snapshot`, `restore` and `fork`: parsing, usage errors and the --json shapes (cli.md §3.2, §3.5, §3.6). */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isStasisError, type SnapshotResult } from "@stasis/runtime";
import { main } from "../main.js";
import { parseCommand } from "../parse/parser.js";
import { findCommand } from "../parse/schema.js";
import { snapshotJson, snapshotText } from "./snapshot.js";

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (isStasisError(e)) return e.code;
    throw e;
  }
  return undefined;
}

const parse = (cmd: string, argv: string[]) => parseCommand(findCommand(cmd)!, argv);

describe("parsing", () => {
  it("snapshot <target> <out-dir> [--keep-alive] [--dry-run] [--json]", () => {
    const p = parse("snapshot", ["web", "./out", "--keep-alive", "--dry-run", "--json"]);
    expect(p.positionals).toEqual(["web", "./out"]);
    expect([...p.flags.keys()].sort()).toEqual(["dry-run", "json", "keep-alive"]);
    expect(code(() => parse("snapshot", ["web"]))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parse("snapshot", []))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parse("snapshot", ["web", "out", "extra"]))).toBe("PARSE_FLAG_UNKNOWN");
    expect(code(() => parse("snapshot", ["web", "out", "--tcp-keep"]))).toBe("PARSE_FLAG_UNKNOWN");
    expect(code(() => parse("snapshot", ["web", "out", "--", "x"]))).toBe("PARSE_FLAG_UNKNOWN");
  });

  it("restore <snap-dir> [--name n] [--image tar] [--detach|--detached] [--json]", () => {
    const p = parse("restore", ["./b", "--name", "svc/2", "--image=/i.tar.gz", "--detached", "--json"]);
    expect(p.positionals).toEqual(["./b"]);
    expect(p.flags.get("name")).toEqual(["svc/2"]);
    expect(p.flags.get("image")).toEqual(["/i.tar.gz"]);
    expect(p.flags.has("detach")).toBe(true);
    expect(code(() => parse("restore", []))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parse("restore", ["b", "--image"]))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parse("restore", ["b", "--name", "a", "--name", "b"]))).toBe("PARSE_FLAG_DUPLICATE");
  });

  it("fork <target> [--new-name n] [--out-dir d] [--detach] [--json] [--tcp-keep]", () => {
    const p = parse("fork", ["web", "--new-name", "web-2", "--out-dir", "/keep", "--detach", "--json", "--tcp-keep"]);
    expect(p.positionals).toEqual(["web"]);
    expect(p.flags.get("new-name")).toEqual(["web-2"]);
    expect(p.flags.get("out-dir")).toEqual(["/keep"]);
    expect([...p.flags.keys()].sort()).toEqual(["detach", "json", "new-name", "out-dir", "tcp-keep"]);
    expect(code(() => parse("fork", []))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parse("fork", ["web", "--name", "x"]))).toBe("PARSE_FLAG_UNKNOWN");
  });
});

class Sink extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

describe("main(): usage and runtime errors print code: message, never a stack", () => {
  let dir: string;
  const saved = process.env.STASIS_REGISTRY_DIR;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "stasis-cli-snap-"));
    process.env.STASIS_REGISTRY_DIR = path.join(dir, "registry");
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.STASIS_REGISTRY_DIR;
    else process.env.STASIS_REGISTRY_DIR = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(args: string[]): Promise<{ status: number; err: string; out: string }> {
    const out = new Sink();
    const err = new Sink();
    const status = await main(args, out as unknown as typeof process.stdout, err as unknown as typeof process.stderr);
    return { status, err: err.text, out: out.text };
  }

  it("exit 2 for bad usage", async () => {
    for (const [args, c] of [
      [["restore", "./b", "--json"], "PARSE_FLAG_MALFORMED"],
      [["fork", "web", "--json"], "PARSE_FLAG_MALFORMED"],
      [["fork", "web", "--new-name", "123"], "PARSE_FLAG_MALFORMED"],
      [["restore", "./b", "--name", "42"], "PARSE_FLAG_MALFORMED"],
      [["snapshot", "web"], "PARSE_FLAG_MISSING_VALUE"],
    ] as const) {
      const r = await run([...args]);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.err).toContain(`[${c}]`);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
  });

  it("exit 1 for a VM or bundle that is not there", async () => {
    for (const [args, c] of [
      [["snapshot", "no-such-vm", path.join(dir, "out")], "REGISTRY_VM_NOT_FOUND"],
      [["fork", "no-such-vm"], "REGISTRY_VM_NOT_FOUND"],
      [["restore", path.join(dir, "no-bundle")], "BOOT_SNAPSHOT_NOT_FOUND"],
    ] as const) {
      const r = await run([...args]);
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.err).toContain(`[${c}]`);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
  });
});

describe("snapshot --json and text", () => {
  const base: SnapshotResult = {
    engine: "vmstate",
    snapDir: "/b",
    vmstatePath: "/b/state.vmstate",
    elapsedMs: 412,
    consoleLog: "",
    snappedAt: 1,
    destructive: true,
    sourcePid: 77,
    sourceName: "web",
    memoryBytes: 4096,
    timings: { totalMs: 300 },
  };

  it("a written bundle: {engine, snapDir, imgDir?, vmstatePath?, elapsedMs}", () => {
    expect(snapshotJson(base)).toEqual({ engine: "vmstate", snapDir: "/b", vmstatePath: "/b/state.vmstate", elapsedMs: 412 });
    const { vmstatePath: _v, ...criuish } = base;
    expect(snapshotJson({ ...criuish, engine: "criu", imgDir: "/b/img" })).toEqual({ engine: "criu", snapDir: "/b", imgDir: "/b/img", elapsedMs: 412 });
    expect(snapshotText(base)).toBe("snapshot of 77 (web) written to /b (vmstate, 412 ms); the VM has stopped\n");
    expect(snapshotText({ ...base, destructive: false })).toContain("the VM keeps running");
  });

  it("--dry-run: target, out-dir, engine, destructive", () => {
    const dry: SnapshotResult = { ...base, dryRun: true, elapsedMs: 0 };
    expect(snapshotJson(dry)).toEqual({ dryRun: true, pid: 77, name: "web", engine: "vmstate", snapDir: "/b", destructive: true });
    expect(snapshotJson({ ...dry, sourceName: undefined, destructive: false })).toMatchObject({ name: null, destructive: false });
    expect(snapshotText(dry)).toBe("would snapshot 77 (web) into /b with the vmstate engine; the VM would stop\n");
  });
});
