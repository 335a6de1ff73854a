import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import { readMeta, validateMeta, writeMeta, type SnapshotMeta } from "./meta.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "stasis-meta-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const good: SnapshotMeta = {
  engine: "vmstate",
  sourceName: "counter",
  sourceImage: "/abs/counter.tar.gz",
  snappedAt: 1730000000000,
  createdAt: "2024-10-27T03:33:20.000Z",
  memoryMib: 512,
  cpus: 2,
  sourcePid: 4242,
  forkedFrom: "/abs/older-bundle",
  rootfs: "rootfs.img",
  files: ["state.vmstate", "memory.img", "disk-1.img", "rootfs.img"],
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isStasisError(e) ? e.code : String(e);
  }
  return undefined;
}

describe("meta.json", () => {
  it("round-trips every field and keeps unknown ones", () => {
    const b = path.join(dir, "round");
    mkdirSync(b);
    writeMeta(b, good);
    expect(readMeta(b)).toEqual(good);
    writeFileSync(path.join(b, "meta.json"), JSON.stringify({ ...good, futureField: [1] }));
    expect((readMeta(b) as unknown as { futureField: number[] }).futureField).toEqual([1]);
  });

  it("needs only snappedAt (older and foreign writers)", () => {
    expect(validateMeta({ snappedAt: 0 })).toEqual({ snappedAt: 0 });
  });

  it("names the first missing or garbled field (SNAPSHOT_BUNDLE_INVALID)", () => {
    const cases: [unknown, string][] = [
      [null, "not a JSON object"],
      [[good], "not a JSON object"],
      [{ ...good, snappedAt: undefined }, "snappedAt"],
      [{ ...good, snappedAt: "yesterday" }, "snappedAt"],
      [{ ...good, engine: "" }, "engine"],
      [{ ...good, engine: 3 }, "engine"],
      [{ ...good, sourceImage: "relative.tar.gz" }, "sourceImage"],
      [{ ...good, createdAt: "not a date" }, "createdAt"],
      [{ ...good, memoryMib: 0 }, "memoryMib"],
      [{ ...good, cpus: 1.5 }, "cpus"],
      [{ ...good, sourcePid: -1 }, "sourcePid"],
      [{ ...good, forkedFrom: "rel" }, "forkedFrom"],
      [{ ...good, rootfs: "../outside.img" }, "rootfs"],
      [{ ...good, rootfs: "/etc/passwd" }, "rootfs"],
      [{ ...good, files: ["ok", "a/../../x"] }, "files"],
      [{ ...good, files: "state.vmstate" }, "files"],
      [{ ...good, mountDisk: { guest: "/mnt/in", lower: "../l", upper: "u" } }, "mountDisk"],
      [{ ...good, liveMounts: [{ guest: "/mnt/ws", host: "rel", mode: "rw" }] }, "liveMounts"],
      [{ ...good, liveMounts: [{ guest: "/mnt/ws", host: "/abs", mode: "rwx" }] }, "liveMounts"],
    ];
    for (const [value, field] of cases) {
      let err: unknown;
      try {
        validateMeta(value, "x/meta.json");
      } catch (e) {
        err = e;
      }
      expect(isStasisError(err, "SNAPSHOT_BUNDLE_INVALID"), field).toBe(true);
      expect((err as Error).message, field).toContain(field);
    }
  });

  it("reading: missing → BOOT_SNAPSHOT_NOT_FOUND, not JSON or invalid → SNAPSHOT_BUNDLE_INVALID", () => {
    const b = path.join(dir, "read");
    mkdirSync(b);
    expect(codeOf(() => readMeta(b))).toBe("BOOT_SNAPSHOT_NOT_FOUND");
    writeFileSync(path.join(b, "meta.json"), "{ truncated");
    expect(codeOf(() => readMeta(b))).toBe("SNAPSHOT_BUNDLE_INVALID");
    writeFileSync(path.join(b, "meta.json"), JSON.stringify({ engine: "vmstate" }));
    expect(codeOf(() => readMeta(b))).toBe("SNAPSHOT_BUNDLE_INVALID");
    mkdirSync(path.join(b, "dir"));
    rmSync(path.join(b, "meta.json"));
    mkdirSync(path.join(b, "meta.json"));
    expect(codeOf(() => readMeta(b))).toBe("SNAPSHOT_BUNDLE_INVALID");
  });

  it("a writer cannot produce an invalid file", () => {
    const b = path.join(dir, "write");
    mkdirSync(b);
    expect(codeOf(() => writeMeta(b, { ...good, rootfs: "../x" }))).toBe("SNAPSHOT_BUNDLE_INVALID");
    expect(() => readFileSync(path.join(b, "meta.json"))).toThrow();
  });
});
