/** Where the registry and the detached boot logs live (api.md §10.1, §1.4). */
import os from "node:os";
import path from "node:path";

/** `STASIS_REGISTRY_DIR`, else `~/.stasis/vms`. */
export function registryRoot(): string {
  const fromEnv = process.env.STASIS_REGISTRY_DIR;
  return fromEnv ? path.resolve(fromEnv) : path.join(os.homedir(), ".stasis", "vms");
}

/** `STASIS_DETACHED_LOG_DIR`, else `~/.stasis/logs`. */
export function detachedLogRoot(): string {
  const fromEnv = process.env.STASIS_DETACHED_LOG_DIR;
  return fromEnv ? path.resolve(fromEnv) : path.join(os.homedir(), ".stasis", "logs");
}

/** `<detachedLogRoot()>/<pid>.boot.log`. */
export function bootSnapshotPath(pid: number): string {
  return path.join(detachedLogRoot(), `${pid}.boot.log`);
}

/** The directory of one entry: `<root>/<pid>`. */
export function entryDir(pid: number, root = registryRoot()): string {
  return path.join(root, String(pid));
}

/** Name reservations live beside the entries, in a directory no pid can name. */
export function namesDir(root = registryRoot()): string {
  return path.join(root, ".names");
}
