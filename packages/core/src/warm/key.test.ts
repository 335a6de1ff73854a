import { copyFileSync, existsSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { WARM_FORMAT, describeInputs, warmKey, type WarmInputs } from "./key.js";
import { makeInputs, tempCache } from "./testing/fixtures.js";

const t = tempCache("key");
afterAll(() => t.done());

describe("warm cache key", () => {
  const base = makeInputs(t.dir, { args: ["--foo", "1"], vmmEnv: { B: "2", A: "1" } });
  const key = warmKey(base);

  it("is 32 hex digits, stable, and remembers the file hashes under <root>/.hashes", () => {
    expect(key).toMatch(/^[0-9a-f]{32}$/);
    expect(warmKey({ ...base })).toBe(key);
    expect(readdirSync(path.join(t.root, ".hashes")).length).toBe(5);
    expect(WARM_FORMAT).toBe(1);
  });

  it("does not depend on vmmEnv's order or on where identical files live", () => {
    expect(warmKey({ ...base, vmmEnv: { A: "1", B: "2" } })).toBe(key);
    const moved = path.join(t.dir, "kernel-copy");
    copyFileSync(base.kernel, moved);
    expect(warmKey({ ...base, kernel: moved })).toBe(key);
  });

  it("changes with every input", () => {
    const variants: [string, Partial<WarmInputs>][] = [
      ["memoryMib", { memoryMib: 513 }],
      ["cpus", { cpus: 2 }],
      ["upperBytes", { upperBytes: base.upperBytes + 1 }],
      ["kvm", { kvm: "kvm-nested" }],
      ["args", { args: ["--foo", "2"] }],
      ["args order", { args: ["1", "--foo"] }],
      ["args split", { args: ["--foo 1"] }],
      ["no args", { args: [] }],
      ["vmmEnv value", { vmmEnv: { A: "1", B: "3" } }],
      ["vmmEnv extra", { vmmEnv: { A: "1", B: "2", C: "" } }],
      ["vmmEnv missing", { vmmEnv: { A: "1" } }],
    ];
    for (const f of ["vmm", "kernel", "init", "agent", "image"] as const) {
      const other = path.join(t.dir, `other-${f}`);
      writeFileSync(other, `another ${f}\n`);
      variants.push([f, { [f]: other }]);
    }
    const keys = new Set([key]);
    for (const [what, change] of variants) {
      const k = warmKey({ ...base, ...change });
      expect(keys.has(k), what).toBe(false);
      keys.add(k);
    }
  });

  it("follows a file's content when it is rewritten in place", () => {
    const inputs = makeInputs(path.join(t.dir, "rewrite"));
    const before = warmKey(inputs);
    writeFileSync(inputs.image, "a new rootfs tarball, longer than before\n");
    expect(warmKey(inputs)).not.toBe(before);
  });

  it("refuses malformed inputs with a TypeError, and a missing file with the fs error", () => {
    expect(() => warmKey({ ...base, memoryMib: 1.5 })).toThrow(TypeError);
    expect(() => warmKey({ ...base, args: [1 as unknown as string] })).toThrow(TypeError);
    expect(() => warmKey({ ...base, vmmEnv: { A: 1 as unknown as string } })).toThrow(TypeError);
    expect(() => warmKey({ ...base, kernel: "" })).toThrow(TypeError);
    expect(() => warmKey({ ...base, kernel: path.join(t.dir, "nope") })).toThrow(/ENOENT/);
  });

  it("describeInputs records absolute paths, sizes, hashes and the rest", () => {
    const rel = path.relative(process.cwd(), base.image);
    const d = describeInputs({ ...base, image: rel });
    expect(d.image.path).toBe(base.image);
    expect(d.image.bytes).toBe("image.tar.gz contents\n".length);
    expect(d.image.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(d.kernel.path).toBe(base.kernel);
    expect(d).toMatchObject({ memoryMib: 512, cpus: 1, upperBytes: base.upperBytes, kvm: "kvm", args: ["--foo", "1"] });
    expect(Object.keys(d.vmmEnv)).toEqual(["A", "B"]);
    expect(existsSync(base.vmm)).toBe(true);
  });
});
