import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import type { SnapshotEngine } from "./engine.js";
import { bundleEngineName, findEngine, knownEngines, registerEngine, unregisterEngine } from "./engines.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "stasis-engines-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  for (const n of ["alpha", "beta", "vmstate"]) unregisterEngine(n);
});

function engine(name: string, marker?: string): SnapshotEngine {
  return {
    name,
    recognises: (d) => marker !== undefined && existsSync(path.join(d, marker)),
    snapshot: () => Promise.reject(new Error("not here")),
    restore: () => Promise.reject(new Error("not here")),
  };
}

function bundle(name: string, files: string[], dirs: string[] = []): string {
  const b = path.join(dir, name);
  mkdirSync(b);
  for (const d of dirs) mkdirSync(path.join(b, d));
  for (const f of files) writeFileSync(path.join(b, f), "");
  return b;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isStasisError(e) ? e.code : String(e);
  }
  return undefined;
}

describe("engine registry", () => {
  it("registered engines are found by name; per-call engines win over registered ones", () => {
    const registered = engine("alpha");
    const perCall = engine("alpha");
    registerEngine(registered);
    expect(findEngine("alpha")).toBe(registered);
    expect(findEngine("alpha", [perCall])).toBe(perCall);
    expect(knownEngines([perCall, engine("beta")]).map((e) => e.name)).toEqual(["alpha", "beta"]);
    expect(unregisterEngine("alpha")).toBe(true);
    expect(codeOf(() => findEngine("alpha"))).toBe("SNAPSHOT_ENGINE_NOT_INSTALLED");
  });

  it("an unknown name is SNAPSHOT_ENGINE_NOT_INSTALLED with a way out; criu says it is not installed", () => {
    registerEngine(engine("vmstate"));
    let err: unknown;
    try {
      findEngine("nope");
    } catch (e) {
      err = e;
    }
    expect(isStasisError(err, "SNAPSHOT_ENGINE_NOT_INSTALLED")).toBe(true);
    expect((err as Error).message).toMatch(/"nope".*installed: vmstate.*registerEngine/);
    try {
      findEngine("criu");
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toMatch(/CRIU engine .* not part of this stasis/);
  });

  it("rejects things that are not engines", () => {
    expect(() => registerEngine({ name: "" } as unknown as SnapshotEngine)).toThrow(TypeError);
    expect(() => registerEngine({ name: "x", recognises: () => true } as unknown as SnapshotEngine)).toThrow(TypeError);
  });
});

describe("bundle engine detection (api.md §5.1, B113)", () => {
  it("meta.engine wins over content", () => {
    const b = bundle("both", ["state.vmstate"]);
    expect(bundleEngineName(b, { snappedAt: 0, engine: "beta" })).toBe("beta");
  });

  it("without meta.engine: a known engine that recognises the contents, then the built-in markers, then criu", () => {
    const vm = bundle("vm", ["state.vmstate"]);
    const criu = bundle("criu", [], ["img"]);
    const empty = bundle("empty", []);
    const custom = bundle("custom", ["alpha.state"]);
    expect(bundleEngineName(vm, { snappedAt: 0 })).toBe("vmstate");
    expect(bundleEngineName(criu, { snappedAt: 0 })).toBe("criu");
    expect(bundleEngineName(empty, { snappedAt: 0 })).toBe("criu");
    expect(bundleEngineName(custom, { snappedAt: 0 })).toBe("criu");
    expect(bundleEngineName(custom, { snappedAt: 0 }, [engine("alpha", "alpha.state")])).toBe("alpha");
    registerEngine(engine("alpha", "alpha.state"));
    expect(bundleEngineName(custom, { snappedAt: 0 })).toBe("alpha");
  });

  it("a plugin whose detector throws is skipped", () => {
    const broken: SnapshotEngine = { ...engine("beta"), recognises: () => { throw new Error("boom"); } };
    expect(bundleEngineName(bundle("vm2", ["state.vmstate"]), { snappedAt: 0 }, [broken])).toBe("vmstate");
  });
});
