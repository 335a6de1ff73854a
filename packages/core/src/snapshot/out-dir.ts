/**
 * Where a bundle is written (api.md §4.2, B99): the out dir must be absent
 * or empty and is never overwritten. Engines build the bundle in a staging
 * directory beside it and rename it into place as the last step, so a
 * failure or a crash never leaves a half bundle under the requested name.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { ErrorCode, SnapshotError } from "../errors/index.js";

function notEmpty(dir: string, why: string): SnapshotError {
  return new SnapshotError(
    ErrorCode.SNAPSHOT_OUT_DIR_NOT_EMPTY,
    `${dir} ${why}: a snapshot never overwrites; pass a new or empty directory`,
  );
}

/** The absolute out dir, after checking it is absent or an empty directory. Touches nothing. */
export function checkOutDir(outDir: unknown): string {
  if (typeof outDir !== "string" || outDir === "" || outDir.includes("\0")) {
    throw new TypeError(`snapshot outDir must be a directory path, got ${JSON.stringify(outDir)}`);
  }
  const abs = path.resolve(outDir);
  let st;
  try {
    st = statSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return abs;
    throw err;
  }
  if (!st.isDirectory()) throw notEmpty(abs, "exists and is not a directory");
  if (readdirSync(abs).length > 0) throw notEmpty(abs, "is not empty");
  return abs;
}

/**
 * A fresh staging path beside `outDir` (`.<base>.partial-<pid>-<rand>`),
 * which does not exist yet; its parent is created if needed. Being in the
 * same directory makes the final rename atomic.
 */
export function stagingPathFor(outDir: string): string {
  const parent = path.dirname(outDir);
  mkdirSync(parent, { recursive: true });
  return path.join(parent, `.${path.basename(outDir)}.partial-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/** Removes a staging dir and anything a writer left as `<staging>.partial-*`. Never throws. */
export function removeStaging(staging: string): void {
  const parent = path.dirname(staging);
  const prefix = `${path.basename(staging)}.partial-`;
  const leftovers = [staging];
  try {
    for (const n of readdirSync(parent)) if (n.startsWith(prefix)) leftovers.push(path.join(parent, n));
  } catch {
    // parent gone: nothing to remove
  }
  for (const p of leftovers) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}

/** Renames the finished staging dir to `outDir` (an empty outDir is removed first). */
export function commitBundle(staging: string, outDir: string): void {
  try {
    rmdirSync(outDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST") throw notEmpty(outDir, "was filled while the snapshot ran");
    if (code === "ENOTDIR") throw notEmpty(outDir, "appeared as a file while the snapshot ran");
    if (code !== "ENOENT") throw err;
  }
  try {
    renameSync(staging, outDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST") throw notEmpty(outDir, "was created while the snapshot ran");
    throw err;
  }
}
