/**
 * sha256 of a file, remembered by (path, device, inode, size, mtime) so the
 * second boot of the same tarball does not read it again.
 */
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

interface Memo {
  path: string;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  sha256: string;
}

export function sha256File(file: string): string {
  const hash = createHash("sha256");
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

export function sha256FileMemo(file: string, memoDir: string): string {
  const abs = path.resolve(file);
  const st = statSync(abs);
  const memoPath = path.join(memoDir, `${createHash("sha1").update(abs).digest("hex")}.json`);
  try {
    const m = JSON.parse(readFileSync(memoPath, "utf8")) as Memo;
    if (m.path === abs && m.dev === st.dev && m.ino === st.ino && m.size === st.size && m.mtimeMs === st.mtimeMs && /^[0-9a-f]{64}$/.test(m.sha256)) {
      return m.sha256;
    }
  } catch {
    // no memo yet, or unreadable: compute
  }
  const sha256 = sha256File(abs);
  try {
    mkdirSync(memoDir, { recursive: true });
    const tmp = `${memoPath}.${process.pid}.tmp`;
    const memo: Memo = { path: abs, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, sha256 };
    writeFileSync(tmp, JSON.stringify(memo));
    renameSync(tmp, memoPath);
  } catch {
    // the memo is an optimisation only
  }
  return sha256;
}
