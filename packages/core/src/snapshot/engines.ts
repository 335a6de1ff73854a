/**
 * Which engines this process knows: the registered ones (runtime registers
 * the built-ins on import; plugins call registerEngine()) plus any passed
 * per call as `engines: [...]`, which win over registered ones of the same
 * name.
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { ErrorCode, SnapshotError } from "../errors/index.js";
import type { SnapshotEngine } from "./engine.js";
import type { SnapshotMeta } from "./meta.js";

const registered = new Map<string, SnapshotEngine>();

function checkEngine(engine: unknown): SnapshotEngine {
  const e = engine as SnapshotEngine;
  if (
    e === null || typeof e !== "object" || typeof e.name !== "string" || e.name === "" ||
    typeof e.recognises !== "function" || typeof e.snapshot !== "function" || typeof e.restore !== "function"
  ) {
    throw new TypeError("a snapshot engine needs a non-empty name and recognises(), snapshot() and restore() methods");
  }
  return e;
}

/** Makes `engine` available to every later snapshot/restore/fork; replaces one of the same name. */
export function registerEngine(engine: SnapshotEngine): void {
  const e = checkEngine(engine);
  registered.set(e.name, e);
}

/** Forgets a registered engine (tests, plugins being unloaded). */
export function unregisterEngine(name: string): boolean {
  return registered.delete(name);
}

/** Per-call engines first, then registered ones; one per name. */
export function knownEngines(extra: readonly SnapshotEngine[] = []): SnapshotEngine[] {
  const byName = new Map<string, SnapshotEngine>();
  for (const e of extra.map(checkEngine)) if (!byName.has(e.name)) byName.set(e.name, e);
  for (const [name, e] of registered) if (!byName.has(name)) byName.set(name, e);
  return [...byName.values()];
}

function notInstalled(name: string, known: string[]): SnapshotError {
  const have = known.length > 0 ? `installed: ${known.join(", ")}` : "none is installed";
  const fix =
    name === "criu"
      ? "the CRIU engine (@stasis/engine-criu) is not part of this stasis yet; restore the bundle where it is installed, or snapshot with the vmstate engine"
      : name === "vmstate"
        ? "use @stasis/runtime, which registers it, or registerEngine() the engine from @stasis/engine-vmstate"
        : `pass it in \`engines: [...]\` or call registerEngine() with it`;
  return new SnapshotError(ErrorCode.SNAPSHOT_ENGINE_NOT_INSTALLED, `no snapshot engine named ${JSON.stringify(name)} is installed (${have}): ${fix}`);
}

/** The engine called `name`; SNAPSHOT_ENGINE_NOT_INSTALLED when there is none. */
export function findEngine(name: string, extra: readonly SnapshotEngine[] = []): SnapshotEngine {
  const engines = knownEngines(extra);
  const hit = engines.find((e) => e.name === name);
  if (!hit) throw notInstalled(name, engines.map((e) => e.name));
  return hit;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The engine a bundle needs (api.md §5.1): meta.engine if present; else
 * the first known engine that recognises the contents; else the built-in
 * markers (`state.vmstate` ⇒ vmstate, `img/` ⇒ criu); else criu, the
 * reference's default for bundles without the field.
 */
export function bundleEngineName(bundleDir: string, meta: SnapshotMeta, extra: readonly SnapshotEngine[] = []): string {
  if (meta.engine !== undefined) return meta.engine;
  for (const e of knownEngines(extra)) {
    try {
      if (e.recognises(bundleDir)) return e.name;
    } catch {
      // a plugin's detector failing is not a verdict
    }
  }
  if (existsSync(path.join(bundleDir, "state.vmstate"))) return "vmstate";
  if (isDir(path.join(bundleDir, "img"))) return "criu";
  return "criu";
}
