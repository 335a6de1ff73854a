/**
 * Disk use of the cache. Entries hard-link the same files (every entry of
 * one root image links that image as rootfs.img), so bytes are counted per
 * inode: allocated blocks (st_blocks × 512, so sparse memory images count
 * what they hold), each inode once however many entries link it.
 */
import { lstatSync, readdirSync } from "node:fs";
import path from "node:path";

/** Inode identity ("dev:ino") → allocated bytes, for every file under `dir`. Tolerates anything vanishing. */
export function treeInodes(dir: string, into = new Map<string, number>()): Map<string, number> {
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue; // gone, or not a directory
    }
    for (const name of names) {
      const p = path.join(d, name);
      try {
        const st = lstatSync(p);
        if (st.isDirectory()) stack.push(p);
        else into.set(`${st.dev}:${st.ino}`, st.blocks * 512);
      } catch {
        // removed meanwhile
      }
    }
  }
  return into;
}

/** Sum of allocated bytes under `dir`, each inode once. */
export function treeBytes(dir: string): number {
  let total = 0;
  for (const b of treeInodes(dir).values()) total += b;
  return total;
}

/**
 * The bytes of a set of entries, with shared inodes counted once. `remove`
 * says how much leaving one entry out frees (shared inodes only once their
 * last holder goes).
 */
export class CacheUsage {
  private readonly holders = new Map<string, number>();
  private readonly sizes = new Map<string, number>();
  private readonly byEntry = new Map<string, Map<string, number>>();
  private total = 0;

  add(id: string, inodes: Map<string, number>): void {
    this.byEntry.set(id, inodes);
    for (const [ino, bytes] of inodes) {
      const n = this.holders.get(ino) ?? 0;
      if (n === 0) {
        this.sizes.set(ino, bytes);
        this.total += bytes;
      }
      this.holders.set(ino, n + 1);
    }
  }

  /** Leaves `id` out; returns the bytes that frees. */
  remove(id: string): number {
    const inodes = this.byEntry.get(id);
    if (!inodes) return 0;
    this.byEntry.delete(id);
    let freed = 0;
    for (const ino of inodes.keys()) {
      const n = this.holders.get(ino)! - 1;
      if (n > 0) {
        this.holders.set(ino, n);
        continue;
      }
      this.holders.delete(ino);
      freed += this.sizes.get(ino)!;
      this.sizes.delete(ino);
    }
    this.total -= freed;
    return freed;
  }

  get totalBytes(): number {
    return this.total;
  }
}
