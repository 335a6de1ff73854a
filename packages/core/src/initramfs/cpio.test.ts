import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildCpio } from "./cpio.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "stasis-cpio-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("newc cpio writer", () => {
  it("round-trips through GNU cpio with modes and contents intact", () => {
    const archive = buildCpio([
      { kind: "dir", path: "/etc", mode: 0o755 },
      { kind: "file", path: "/etc/x.json", data: Buffer.from('{"a":1}\n') },
      { kind: "file", path: "/init", data: Buffer.from([0, 1, 2, 255]), mode: 0o755 },
      { kind: "dir", path: "/tmp", mode: 0o1777 },
    ]);
    expect(archive.length % 4).toBe(0);
    const file = path.join(tmp, "a.cpio");
    writeFileSync(file, archive);
    const out = path.join(tmp, "out");
    execFileSync("sh", ["-c", `mkdir -p ${out} && cd ${out} && cpio -idm --quiet < ${file}`]);
    expect(readFileSync(path.join(out, "etc/x.json"), "utf8")).toBe('{"a":1}\n');
    expect([...readFileSync(path.join(out, "init"))]).toEqual([0, 1, 2, 255]);
    expect(statSync(path.join(out, "init")).mode & 0o777).toBe(0o755);
    const listing = execFileSync("cpio", ["-it", "--quiet"], { input: archive }).toString().trim().split("\n");
    expect(listing).toEqual(["etc", "etc/x.json", "init", "tmp"]);
  });

  it("rejects paths that escape or are empty", () => {
    expect(() => buildCpio([{ kind: "dir", path: "/a/../b" }])).toThrow(/invalid cpio path/);
    expect(() => buildCpio([{ kind: "dir", path: "/" }])).toThrow(/invalid cpio path/);
  });
});
