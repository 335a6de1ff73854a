/**
 * restore(opts) (api.md §4.4): find the bundle, read its meta.json, pick its
 * engine (meta.engine, else by content), and let the engine bring the VM back.
 */
import { statSync } from "node:fs";
import path from "node:path";
import type { VmHandle } from "../boot/handle.js";
import { BootError, ErrorCode } from "../errors/index.js";
import { checkName } from "../registry/names.js";
import type { RestoreOptions } from "./engine.js";
import { bundleEngineName, findEngine } from "./engines.js";
import { readMeta } from "./meta.js";

function bundleDir(snapDir: unknown): string {
  if (typeof snapDir !== "string" || snapDir === "") {
    throw new BootError(ErrorCode.BOOT_SNAPSHOT_NOT_FOUND, "restore needs snapDir: the bundle directory a snapshot wrote");
  }
  const abs = path.resolve(snapDir);
  let isDir = false;
  try {
    isDir = statSync(abs).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new BootError(ErrorCode.BOOT_SNAPSHOT_NOT_FOUND, `snapshot bundle ${abs} does not exist or is not a directory`);
  return abs;
}

/** restore() plus what fork adds: paths removed once the restored VM is gone. */
export async function restoreBundle(opts: RestoreOptions, extra: { cleanupPaths?: string[] } = {}): Promise<VmHandle> {
  if (opts === null || typeof opts !== "object") throw new BootError(ErrorCode.BOOT_SNAPSHOT_NOT_FOUND, "restore needs options: { snapDir }");
  const dir = bundleDir(opts.snapDir);
  const meta = readMeta(dir);
  if (opts.name !== undefined) checkName(opts.name);
  const engine = findEngine(bundleEngineName(dir, meta, opts.engines), opts.engines);
  const { snapDir: _snapDir, ...rest } = opts;
  return engine.restore({ dir, meta }, { ...rest, cleanupPaths: extra.cleanupPaths ?? [] });
}

export function restore(opts: RestoreOptions): Promise<VmHandle> {
  return restoreBundle(opts);
}
