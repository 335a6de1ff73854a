/** `stasis warm ls|rm|prune`: parsing, usage errors, output and --json against a temp STASIS_WARM_DIR. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { isStasisError } from "@stasis/runtime";
import { commandHelp } from "../help.js";
import { formatBytes, warmPruneReport, warmRmReport, warmTable } from "../lib/warm-format.js";
import { main } from "../main.js";
import { parseCommand } from "../parse/parser.js";
import { findCommand } from "../parse/schema.js";

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (isStasisError(e)) return e.code;
    throw e;
  }
  return undefined;
}

const parse = (argv: string[]) => parseCommand(findCommand("warm")!, argv);

class Sink extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

let dir: string;
let root: string;
const saved = { dir: process.env.STASIS_WARM_DIR, size: process.env.STASIS_WARM_CACHE_SIZE };
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "stasis-cli-warm-"));
  root = path.join(dir, "warm");
  process.env.STASIS_WARM_DIR = root;
  delete process.env.STASIS_WARM_CACHE_SIZE;
});
afterAll(() => {
  for (const [k, v] of [["STASIS_WARM_DIR", saved.dir], ["STASIS_WARM_CACHE_SIZE", saved.size]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
  delete process.env.STASIS_WARM_CACHE_SIZE;
});

/** An entry as the store writes it (docs/warm-boot.md "Layout"), `dataBytes` of real data, last used `ageS` ago. */
function fakeEntry(key: string, opts: { ageS: number; dataBytes?: number; cpus?: number; image?: string }): void {
  const d = path.join(root, key);
  mkdirSync(d, { recursive: true });
  const file = (p: string) => ({ path: p, bytes: 1, sha256: "0".repeat(64) });
  const inputs = {
    vmm: file("/opt/stasis-vmm"),
    kernel: file("/opt/vmlinux"),
    init: file("/opt/init"),
    agent: file("/opt/agent"),
    image: file(opts.image ?? "/images/python.tar.gz"),
    memoryMib: 512,
    cpus: opts.cpus ?? 1,
    upperBytes: 1024,
    kvm: "kvm",
    args: [],
    vmmEnv: {},
  };
  const created = new Date(Date.now() - (opts.ageS + 3600) * 1000);
  writeFileSync(path.join(d, "warm.json"), JSON.stringify({ format: 1, key, createdAt: created.toISOString(), inputs }));
  writeFileSync(path.join(d, "state.vmstate"), "STASISVM");
  writeFileSync(path.join(d, "memory.img"), Buffer.alloc(opts.dataBytes ?? 64 * 1024, 1));
  writeFileSync(path.join(d, "last-used"), "");
  const used = new Date(Date.now() - opts.ageS * 1000);
  utimesSync(path.join(d, "last-used"), used, used);
}

const K1 = "aaaa1111" + "0".repeat(24);
const K2 = "aaaa2222" + "0".repeat(24);
const K3 = "bbbb3333" + "0".repeat(24);

async function run(args: string[]): Promise<{ status: number; out: string; err: string }> {
  let stdout = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  const out = new Sink();
  const err = new Sink();
  const status = await main(args, out as unknown as typeof process.stdout, err as unknown as typeof process.stderr);
  vi.restoreAllMocks();
  return { status, out: out.text + stdout, err: err.text };
}

describe("parsing", () => {
  it("warm <ls|rm|prune> [key...] [--all] [--max-size size] [--json]", () => {
    expect(parse(["ls"]).positionals).toEqual(["ls"]);
    expect(parse(["rm", "aa", "bb", "cc", "--json"]).positionals).toEqual(["rm", "aa", "bb", "cc"]);
    expect(parse(["rm", "--all"]).flags.has("all")).toBe(true);
    expect(parse(["prune", "--max-size", "4G", "--json"]).flags.get("max-size")).toEqual(["4G"]);
    expect(parse(["prune", "--max-size=4G"]).flags.get("max-size")).toEqual(["4G"]);
    expect(code(() => parse([]))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parse(["list"]))).toBe("PARSE_FLAG_MALFORMED");
    expect(code(() => parse(["prune", "--max-size"]))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parse(["ls", "--", "x"]))).toBe("PARSE_FLAG_UNKNOWN");
  });

  it("help shows the actions and the variadic key", () => {
    const help = commandHelp(findCommand("warm")!);
    expect(help).toContain("usage: stasis warm <action> [key...] [flags]");
    expect(help).toContain("(ls | rm | prune)");
    expect(help).toContain("--max-size <size>");
  });
});

describe("main(): usage errors exit 2, runtime errors 1, with their codes", () => {
  it("flags and keys that do not belong to the action", async () => {
    for (const [args, c] of [
      [["warm", "ls", "--all"], "PARSE_FLAG_UNKNOWN"],
      [["warm", "rm", K1, "--max-size", "1G"], "PARSE_FLAG_UNKNOWN"],
      [["warm", "prune", "--all"], "PARSE_FLAG_UNKNOWN"],
      [["warm", "ls", K1], "PARSE_FLAG_UNKNOWN"],
      [["warm", "prune", K1], "PARSE_FLAG_UNKNOWN"],
      [["warm", "rm"], "PARSE_FLAG_MISSING_VALUE"],
      [["warm", "rm", K1, "--all"], "PARSE_FLAG_MALFORMED"],
      [["warm", "prune", "--max-size", "lots"], "PARSE_FLAG_MALFORMED"],
    ] as const) {
      const r = await run([...args]);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.err, args.join(" ")).toContain(`[${c}]`);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
  });

  it("unknown or ambiguous keys: WARM_ENTRY_NOT_FOUND naming the matches; nothing is removed", async () => {
    fakeEntry(K1, { ageS: 10 });
    fakeEntry(K2, { ageS: 20 });
    const unknown = await run(["warm", "rm", "ffff"]);
    expect(unknown.status).toBe(1);
    expect(unknown.err).toContain("[WARM_ENTRY_NOT_FOUND]");
    expect(unknown.err).toContain('no entry matches "ffff"');
    const ambiguous = await run(["warm", "rm", K1, "aaaa"]);
    expect(ambiguous.status).toBe(1);
    expect(ambiguous.err).toContain(`"aaaa" is ambiguous: it matches ${K1}, ${K2}`);
    expect(readdirSync(root).sort()).toEqual([K1, K2]);
  });

  it("a bad STASIS_WARM_CACHE_SIZE: WARM_CACHE_SIZE_INVALID, exit 1", async () => {
    process.env.STASIS_WARM_CACHE_SIZE = "big";
    const r = await run(["warm", "prune"]);
    expect(r.status).toBe(1);
    expect(r.err).toContain("[WARM_CACHE_SIZE_INVALID]");
    expect(r.err).toContain("e.g. 8G");
  });
});

describe("warm ls", () => {
  it("a table, most recently used first; --json the full entries; an empty cache is a header", async () => {
    expect((await run(["warm", "ls"])).out).toBe("KEY  IMAGE  MEM  CPUS  SIZE  CREATED  LAST-USED\n");
    expect(JSON.parse((await run(["warm", "ls", "--json"])).out)).toEqual([]);
    fakeEntry(K1, { ageS: 120, cpus: 2 });
    fakeEntry(K3, { ageS: 5, image: "/images/node.tar.gz" });
    const r = await run(["warm", "ls"]);
    expect(r.status).toBe(0);
    const lines = r.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^KEY\s+IMAGE\s+MEM\s+CPUS\s+SIZE\s+CREATED\s+LAST-USED$/);
    expect(lines[1]).toMatch(/^bbbb33330000\s+node\.tar\.gz\s+512M\s+1\s+\d+(\.\d)?K\s+1h ago\s+5s ago$/);
    expect(lines[2]).toMatch(/^aaaa11110000\s+python\.tar\.gz\s+512M\s+2\s+\d+(\.\d)?K\s+1h ago\s+2m ago$/);
    const json = JSON.parse((await run(["warm", "ls", "--json"])).out);
    expect(json.map((e: { key: string }) => e.key)).toEqual([K3, K1]);
    expect(Object.keys(json[0]).sort()).toEqual(["bytes", "createdAt", "dir", "inputs", "key", "lastUsedAt"]);
    expect(json[0].dir).toBe(path.join(root, K3));
    expect(json[0].bytes).toBeGreaterThanOrEqual(64 * 1024);
  });
});

describe("warm rm", () => {
  it("removes by key or unique prefix; reports each and the total", async () => {
    fakeEntry(K1, { ageS: 10 });
    fakeEntry(K2, { ageS: 20 });
    fakeEntry(K3, { ageS: 30 });
    const r = await run(["warm", "rm", "aaaa1", "BBBB"]);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^removed aaaa11110000 \(\d+(\.\d)?K\)\nremoved bbbb33330000 \(\d+(\.\d)?K\)\nwarm rm: 2 entries removed, \d+K freed\n$/);
    expect(readdirSync(root)).toEqual([K2]);
  });

  it("--all removes every entry, damaged ones too; --json lists the removals", async () => {
    fakeEntry(K1, { ageS: 10 });
    mkdirSync(path.join(root, K3)); // damaged: no warm.json
    const r = await run(["warm", "rm", "--all", "--json"]);
    expect(r.status).toBe(0);
    const removed = JSON.parse(r.out);
    expect(removed.map((x: { key: string; why: string }) => [x.key, x.why])).toEqual([[K1, "removed"], [K3, "removed"]]);
    expect(readdirSync(root)).toEqual([]);
    expect((await run(["warm", "rm", "--all"])).out).toBe("warm rm: nothing to remove\n");
  });
});

describe("warm prune", () => {
  it("--max-size: least recently used go first; prints what went and what is left", async () => {
    fakeEntry(K1, { ageS: 300, dataBytes: 1024 * 1024 });
    fakeEntry(K2, { ageS: 200, dataBytes: 1024 * 1024 });
    fakeEntry(K3, { ageS: 100, dataBytes: 1024 * 1024 });
    const r = await run(["warm", "prune", "--max-size", "2.5M"]);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^removed aaaa11110000 \(1\.0M\): least recently used\nwarm prune: 1 removed, 1\.0M freed; 2\.0M left \(max 2\.5M\)\n$/);
    expect(readdirSync(root).sort()).toEqual([K2, K3]);
    const again = JSON.parse((await run(["warm", "prune", "--max-size=2.5M", "--json"])).out);
    expect(again).toMatchObject({ removed: [], maxBytes: 2.5 * 1024 * 1024 });
    expect(again.totalBytes).toBeGreaterThan(2 * 1024 * 1024);
  });

  it("without --max-size: STASIS_WARM_CACHE_SIZE, else 8G", async () => {
    fakeEntry(K1, { ageS: 10 });
    expect((await run(["warm", "prune"])).out).toMatch(/^warm prune: nothing to remove; \d+K left \(max 8\.0G\)\n$/);
    process.env.STASIS_WARM_CACHE_SIZE = "0";
    expect((await run(["warm", "prune"])).out).toContain("warm prune: 1 removed");
    expect(existsSync(path.join(root, K1))).toBe(false);
  });
});

describe("warm formatting", () => {
  it("sizes in binary units", () => {
    expect(formatBytes(0)).toBe("0B");
    expect(formatBytes(1023)).toBe("1023B");
    expect(formatBytes(1024)).toBe("1.0K");
    expect(formatBytes(1536 * 1024)).toBe("1.5M");
    expect(formatBytes(340 * 1024 ** 2)).toBe("340M");
    expect(formatBytes(8 * 1024 ** 3)).toBe("8.0G");
  });

  it("reports and table cope with odd records", () => {
    expect(warmRmReport([{ key: K1, bytes: 2048, why: "removed" }])).toBe("removed aaaa11110000 (2.0K)\nwarm rm: 1 entry removed, 2.0K freed\n");
    expect(warmPruneReport({ removed: [{ key: "x".repeat(32), bytes: 10, why: "stale-fill" }], totalBytes: 0, maxBytes: 1024 })).toBe(
      "removed xxxxxxxxxxxx (10B): unfinished fill of a process that is gone\nwarm prune: 1 removed, 10B freed; 0B left (max 1.0K)\n",
    );
    const now = Date.now();
    expect(warmTable([{ key: K1, bytes: 0, createdAt: "garbage", lastUsedAt: new Date(now).toISOString(), inputs: {} }], now)).toBe(
      "KEY           IMAGE  MEM  CPUS  SIZE  CREATED  LAST-USED\naaaa11110000  ?      ?    ?     0B    ?        0s ago\n",
    );
  });
});
