import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import { checkOutDir, commitBundle, removeStaging, stagingPathFor } from "./out-dir.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "stasis-outdir-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isStasisError(e) ? e.code : (e as Error).name;
  }
  return undefined;
}

describe("snapshot out dir (B99)", () => {
  it("absent or empty is fine and nothing is created; non-empty or a file is refused and untouched", () => {
    expect(checkOutDir(path.join(dir, "new"))).toBe(path.join(dir, "new"));
    expect(existsSync(path.join(dir, "new"))).toBe(false);
    mkdirSync(path.join(dir, "empty"));
    expect(checkOutDir(path.join(dir, "empty"))).toBe(path.join(dir, "empty"));
    mkdirSync(path.join(dir, "full"));
    writeFileSync(path.join(dir, "full", "x"), "keep");
    expect(codeOf(() => checkOutDir(path.join(dir, "full")))).toBe("SNAPSHOT_OUT_DIR_NOT_EMPTY");
    expect(readdirSync(path.join(dir, "full"))).toEqual(["x"]);
    writeFileSync(path.join(dir, "file"), "");
    expect(codeOf(() => checkOutDir(path.join(dir, "file")))).toBe("SNAPSHOT_OUT_DIR_NOT_EMPTY");
    expect(codeOf(() => checkOutDir(""))).toBe("TypeError");
  });

  it("relative paths resolve against the cwd", () => {
    expect(checkOutDir("some/rel")).toBe(path.resolve("some/rel"));
  });

  it("staging sits beside the out dir (parents created), is fresh, and commits by rename", () => {
    const out = path.join(dir, "deep", "er", "bundle");
    const a = stagingPathFor(out);
    const b = stagingPathFor(out);
    expect(a).not.toBe(b);
    expect(path.dirname(a)).toBe(path.dirname(out));
    expect(path.basename(a)).toMatch(new RegExp(`^\\.bundle\\.partial-${process.pid}-[0-9a-f]{8}$`));
    expect(existsSync(a)).toBe(false);
    mkdirSync(a);
    writeFileSync(path.join(a, "meta.json"), "{}");
    mkdirSync(out); // an empty out dir is replaced
    commitBundle(a, out);
    expect(readdirSync(out)).toEqual(["meta.json"]);
    expect(existsSync(a)).toBe(false);
  });

  it("commit refuses an out dir that was filled meanwhile", () => {
    const out = path.join(dir, "raced");
    const s = stagingPathFor(out);
    mkdirSync(s);
    mkdirSync(out);
    writeFileSync(path.join(out, "other"), "");
    expect(codeOf(() => commitBundle(s, out))).toBe("SNAPSHOT_OUT_DIR_NOT_EMPTY");
    expect(readdirSync(out)).toEqual(["other"]);
  });

  it("removeStaging also removes what a killed writer left as <staging>.partial-*", () => {
    const s = stagingPathFor(path.join(dir, "killed"));
    mkdirSync(`${s}.partial-999`);
    writeFileSync(path.join(`${s}.partial-999`, "memory.img"), "x");
    mkdirSync(s);
    removeStaging(s);
    expect(readdirSync(dir).filter((n) => n.includes("killed"))).toEqual([]);
    removeStaging(path.join(dir, "nowhere", "x")); // never throws
  });
});
