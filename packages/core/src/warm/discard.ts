/**
 * Removing an entry (or any directory of the cache): first renamed to
 * `.trash-<name>-<pid>-<rand>`, which lookups never read, then deleted. The
 * rename is atomic, so a lookup sees the whole entry or nothing; a crash
 * between the two steps leaves trash that pruneWarm removes.
 *
 * A VM restored from an entry keeps running when the entry is removed: on
 * Linux its mapping of memory.img and its open disks hold the inodes, which
 * are freed when the VM exits.
 */
import { randomBytes } from "node:crypto";
import { lstatSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { TRASH_PREFIX, isWarmKey, warmRoot } from "./paths.js";

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function resolveTarget(keyOrDir: string, root: string): string {
  if (isWarmKey(keyOrDir)) return path.join(root, keyOrDir);
  const abs = path.resolve(keyOrDir);
  if (path.dirname(abs) !== root) {
    throw new TypeError(`discardWarm takes a key or a directory directly in ${root}, got ${JSON.stringify(keyOrDir)}`);
  }
  return abs;
}

/** Deletes a path, tolerating it (or parts of it) vanishing meanwhile. Never throws. */
export function removeTree(p: string): void {
  try {
    rmSync(p, { recursive: true, force: true, maxRetries: 2 });
  } catch {
    // best effort: whatever is left is trash for the next prune
  }
}

/** Moves `dir` out of sight; its trash path, or undefined if it was already gone. */
export function moveToTrash(dir: string): string | undefined {
  const trash = path.join(path.dirname(dir), `${TRASH_PREFIX}${path.basename(dir)}-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    renameSync(dir, trash);
  } catch (err) {
    if (errno(err) === "ENOENT") return undefined;
    throw err;
  }
  return trash;
}

/**
 * Removes an entry given by key, or a directory directly in the root given
 * by path. True if this call removed it; false if it was already gone (a
 * concurrent remover got there first). Throws only when the rename itself
 * fails for another reason (e.g. EACCES).
 */
export function discardWarm(keyOrDir: string, root = warmRoot()): boolean {
  const trash = moveToTrash(resolveTarget(keyOrDir, root));
  if (trash === undefined) return false;
  removeTree(trash);
  return true;
}

/**
 * Discards `dir` only if it is still the directory with inode `ino` (what
 * the caller found damaged). If another process replaced it meanwhile (a
 * fresh entry published after a concurrent removal), that one is put back.
 * Never throws.
 */
export function discardIfSame(dir: string, ino: number): void {
  let trash: string | undefined;
  try {
    trash = moveToTrash(dir);
  } catch {
    return;
  }
  if (trash === undefined) return;
  let same = true;
  try {
    same = lstatSync(trash).ino === ino;
  } catch {
    return;
  }
  if (!same) {
    try {
      renameSync(trash, dir);
      return;
    } catch {
      // yet another one took the name meanwhile: ours goes
    }
  }
  removeTree(trash);
}
