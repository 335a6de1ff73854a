/** Publishing, looking up and discarding entries on real directories (docs/warm-boot.md "The cache"). */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { discardWarm, fillPath, listWarm, lookupWarm, publishWarm, pruneWarm, warmKey, warmRoot } from "./index.js";
import { makeBundle, makeInputs, tempCache } from "./testing/fixtures.js";

const t = tempCache("store");
afterAll(() => t.done());
const inputs = makeInputs(t.dir);

beforeEach(() => rmSync(t.root, { recursive: true, force: true }));

function fill(key: string, tag = "a"): string {
  return makeBundle(fillPath(key), { tag });
}

describe("warm store", () => {
  it("warmRoot: STASIS_WARM_DIR resolved, else ~/.stasis/warm", () => {
    expect(warmRoot()).toBe(t.root);
    const saved = process.env.STASIS_WARM_DIR;
    try {
      process.env.STASIS_WARM_DIR = "rel/warm";
      expect(warmRoot()).toBe(path.resolve("rel/warm"));
      delete process.env.STASIS_WARM_DIR;
      expect(warmRoot()).toMatch(/\.stasis\/warm$/);
    } finally {
      process.env.STASIS_WARM_DIR = saved;
    }
  });

  it("a missing root is an empty cache for lookup, list and prune", () => {
    const key = warmKey(inputs);
    rmSync(t.root, { recursive: true, force: true });
    expect(lookupWarm(key)).toBeUndefined();
    expect(listWarm()).toEqual([]);
    expect(pruneWarm({ maxBytes: 0 })).toEqual({ removed: [], totalBytes: 0, maxBytes: 0 });
  });

  it("fillPath is <root>/.fill-<key>-<pid>-<n>, absent, new on every call; keys are checked", () => {
    const key = warmKey(inputs);
    const a = fillPath(key);
    expect(path.dirname(a)).toBe(t.root);
    expect(path.basename(a)).toMatch(new RegExp(`^\\.fill-${key}-${process.pid}-\\d+$`));
    expect(fillPath(key)).not.toBe(a);
    expect(existsSync(fillPath(key))).toBe(false);
    expect(() => fillPath("../escape")).toThrow(TypeError);
    expect(() => lookupWarm("ABC")).toThrow(TypeError);
  });

  it("publish → lookup: the bundle plus warm.json and last-used; lookup touches last-used", () => {
    const key = warmKey(inputs);
    const f = fill(key);
    expect(publishWarm(key, f, inputs)).toBe("published");
    expect(existsSync(f)).toBe(false);
    const dir = path.join(t.root, key);
    expect(readdirSync(dir).sort()).toEqual(["disk-1.img", "last-used", "memory.img", "meta.json", "state.vmstate", "warm.json"]);
    const record = JSON.parse(readFileSync(path.join(dir, "warm.json"), "utf8"));
    expect(record).toMatchObject({ format: 1, key, inputs: { memoryMib: 512, image: { path: inputs.image } } });
    expect(Date.parse(record.createdAt)).not.toBeNaN();

    const old = new Date(Date.now() - 3600_000);
    utimesSync(path.join(dir, "last-used"), old, old);
    const hit = lookupWarm(key)!;
    expect(hit).toMatchObject({ key, dir, createdAt: record.createdAt, inputs: record.inputs });
    expect(Date.now() - Date.parse(hit.lastUsedAt)).toBeLessThan(60_000);
    expect(Date.now() - statSync(path.join(dir, "last-used")).mtimeMs).toBeLessThan(60_000);
    expect(lookupWarm(warmKey({ ...inputs, cpus: 2 }))).toBeUndefined();
  });

  it("lookup recreates a missing last-used", () => {
    const key = warmKey(inputs);
    publishWarm(key, fill(key), inputs);
    rmSync(path.join(t.root, key, "last-used"));
    expect(lookupWarm(key)).toBeDefined();
    expect(existsSync(path.join(t.root, key, "last-used"))).toBe(true);
  });

  it("a second publish of a key loses: its fill goes, the first entry is untouched", () => {
    const key = warmKey(inputs);
    publishWarm(key, fill(key, "first"), inputs);
    const before = readFileSync(path.join(t.root, key, "warm.json"), "utf8");
    const second = path.join(t.root, `.fill-${key}-999999999`);
    makeBundle(second, { tag: "second" });
    expect(publishWarm(key, second, inputs)).toBe("lost");
    expect(existsSync(second)).toBe(false);
    expect(readFileSync(path.join(t.root, key, "state.vmstate"), "utf8")).toBe("STASISVM first");
    expect(readFileSync(path.join(t.root, key, "warm.json"), "utf8")).toBe(before);
    expect(readdirSync(t.root).filter((n) => n.startsWith("."))).toEqual([".hashes"]);
  });

  it("publish refuses a fill without state.vmstate or outside the root, and leaves it", () => {
    const key = warmKey(inputs);
    const f = fillPath(key);
    mkdirSync(f, { recursive: true });
    expect(() => publishWarm(key, f, inputs)).toThrow(/no state\.vmstate/);
    expect(existsSync(f)).toBe(true);
    const outside = makeBundle(path.join(t.dir, "elsewhere"));
    expect(() => publishWarm(key, outside, inputs)).toThrow(TypeError);
    expect(existsSync(path.join(t.root, key))).toBe(false);
  });

  it("damaged entries are discarded by lookup, never thrown about", () => {
    const key = warmKey(inputs);
    const dir = path.join(t.root, key);
    const damage: [string, () => void][] = [
      ["no warm.json", () => rmSync(path.join(dir, "warm.json"))],
      ["garbled warm.json", () => writeFileSync(path.join(dir, "warm.json"), "{not json")],
      ["warm.json for another key", () => writeFileSync(path.join(dir, "warm.json"), JSON.stringify({ format: 1, key: "0".repeat(32), createdAt: new Date().toISOString(), inputs: {} }))],
      ["another format", () => writeFileSync(path.join(dir, "warm.json"), JSON.stringify({ format: 99, key, createdAt: new Date().toISOString(), inputs: {} }))],
      ["warm.json not an object", () => writeFileSync(path.join(dir, "warm.json"), "[]")],
      ["no state.vmstate", () => rmSync(path.join(dir, "state.vmstate"))],
    ];
    for (const [what, breakIt] of damage) {
      publishWarm(key, fill(key), inputs);
      breakIt();
      expect(lookupWarm(key), what).toBeUndefined();
      expect(existsSync(dir), what).toBe(false);
      expect(readdirSync(t.root).filter((n) => n.startsWith(".trash-")), what).toEqual([]);
    }
    mkdirSync(t.root, { recursive: true });
    writeFileSync(dir, "a stray file where an entry should be");
    expect(lookupWarm(key)).toBeUndefined();
    expect(existsSync(dir)).toBe(false);
    mkdirSync(dir);
    expect(lookupWarm(key)).toBeUndefined();
    expect(existsSync(dir)).toBe(false);
  });

  it("publish over a stray file under the key loses instead of throwing; the next lookup clears it", () => {
    const key = warmKey(inputs);
    mkdirSync(t.root, { recursive: true });
    writeFileSync(path.join(t.root, key), "stray");
    expect(publishWarm(key, fill(key), inputs)).toBe("lost");
    expect(lookupWarm(key)).toBeUndefined();
    expect(publishWarm(key, fill(key), inputs)).toBe("published");
    expect(lookupWarm(key)).toBeDefined();
  });

  it("discardWarm: by key or by directory in the root; false when already gone", () => {
    const k1 = warmKey(inputs);
    const k2 = warmKey({ ...inputs, cpus: 2 });
    publishWarm(k1, fill(k1), inputs);
    publishWarm(k2, fill(k2), { ...inputs, cpus: 2 });
    expect(discardWarm(k1)).toBe(true);
    expect(discardWarm(k1)).toBe(false);
    expect(discardWarm(path.join(t.root, k2))).toBe(true);
    expect(readdirSync(t.root)).toEqual([".hashes"]);
    expect(() => discardWarm(path.join(t.dir, "inputs"))).toThrow(TypeError);
    expect(existsSync(path.join(t.dir, "inputs"))).toBe(true);
  });

  it("garbage in the root is ignored by lookup, list and prune", () => {
    const key = warmKey(inputs);
    publishWarm(key, fill(key), inputs);
    writeFileSync(path.join(t.root, "README"), "hello");
    mkdirSync(path.join(t.root, "not-a-key"));
    writeFileSync(path.join(t.root, "0123"), "");
    expect(lookupWarm(key)).toBeDefined();
    expect(listWarm().map((e) => e.key)).toEqual([key]);
    expect(pruneWarm({ maxBytes: 1024 ** 4 }).removed).toEqual([]);
    expect(readdirSync(t.root).sort()).toEqual([".hashes", "0123", key, "README", "not-a-key"].sort());
  });
});
