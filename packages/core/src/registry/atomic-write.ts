/** Whole-file writes that readers never see half done: temp file + rename. */
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    writeFileSync(tmp, data, { mode });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * api.md §1.4 `writeBootSnapshot`: atomic write of a detached boot's console
 * snapshot. Best effort: false on failure, never throws.
 */
export function writeBootSnapshot(file: string, contents: string): boolean {
  try {
    writeFileAtomic(file, contents, 0o644);
    return true;
  } catch {
    return false;
  }
}
