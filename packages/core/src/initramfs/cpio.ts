/**
 * A writer for the "newc" cpio format the Linux kernel unpacks as an
 * initramfs. Uncompressed on purpose: under kvm_pvm the guest kernel's
 * decompressor runs emulated at ~1 MB/s.
 */

export type CpioEntry =
  | { kind: "dir"; path: string; mode?: number }
  | { kind: "file"; path: string; data: Uint8Array; mode?: number }
  | { kind: "chardev"; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, "0");
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function header(ino: number, mode: number, size: number, nameSize: number, rdevMajor = 0, rdevMinor = 0): string {
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
  // rdevmajor, rdevminor, namesize, check
  return (
    "070701" +
    [ino, mode, 0, 0, 1, 0, size, 0, 0, rdevMajor, rdevMinor, nameSize, 0].map(hex8).join("")
  );
}

function normalise(p: string): string {
  const rel = p.replace(/^\/+/, "");
  if (rel === "" || rel.split("/").some((part) => part === ".." || part === "")) {
    throw new Error(`invalid cpio path: ${JSON.stringify(p)}`);
  }
  return rel;
}

/** Serialises entries (parents must precede children) into one buffer. */
export function buildCpio(entries: readonly CpioEntry[]): Buffer {
  const chunks: Buffer[] = [];
  let ino = 1;
  const push = (hdr: string, name: string, data: Uint8Array) => {
    const nameBuf = Buffer.from(`${name}\0`, "utf8");
    const head = Buffer.concat([Buffer.from(hdr, "ascii"), nameBuf]);
    chunks.push(head, Buffer.alloc(pad4(head.length)));
    if (data.length > 0) chunks.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) {
    const name = normalise(e.path);
    const nameSize = Buffer.byteLength(name, "utf8") + 1;
    switch (e.kind) {
      case "dir":
        push(header(ino++, S_IFDIR | (e.mode ?? 0o755), 0, nameSize), name, new Uint8Array());
        break;
      case "file":
        push(header(ino++, S_IFREG | (e.mode ?? 0o644), e.data.length, nameSize), name, e.data);
        break;
      case "chardev":
        push(header(ino++, S_IFCHR | (e.mode ?? 0o600), 0, nameSize, e.major, e.minor), name, new Uint8Array());
        break;
    }
  }
  const trailer = "TRAILER!!!";
  push(header(0, 0, 0, trailer.length + 1), trailer, new Uint8Array());
  return Buffer.concat(chunks);
}
