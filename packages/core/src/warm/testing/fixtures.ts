/** Test fixtures: input files and fake bundles (just files) in temp directories. */
import { closeSync, linkSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { WarmInputs } from "../key.js";

/** A temp dir, plus STASIS_WARM_DIR pointing at `<it>/warm` until `done()`. */
export function tempCache(prefix: string): { dir: string; root: string; done: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `stasis-warm-${prefix}-`));
  const saved = process.env.STASIS_WARM_DIR;
  const root = path.join(dir, "warm");
  process.env.STASIS_WARM_DIR = root;
  return {
    dir,
    root,
    done: () => {
      if (saved === undefined) delete process.env.STASIS_WARM_DIR;
      else process.env.STASIS_WARM_DIR = saved;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Five small input files under `<dir>/inputs` and inputs naming them. */
export function makeInputs(dir: string, overrides: Partial<WarmInputs> = {}): WarmInputs {
  const d = path.join(dir, "inputs");
  mkdirSync(d, { recursive: true });
  const file = (name: string) => {
    const p = path.join(d, name);
    writeFileSync(p, `${name} contents\n`);
    return p;
  };
  return {
    vmm: file("stasis-vmm"),
    kernel: file("vmlinux"),
    init: file("init"),
    agent: file("agent"),
    image: file("image.tar.gz"),
    memoryMib: 512,
    cpus: 1,
    upperBytes: 4 * 1024 ** 3,
    kvm: "kvm",
    args: [],
    vmmEnv: {},
    ...overrides,
  };
}

export interface FakeBundleOptions {
  /** A file to hard-link as rootfs.img (the cached root image, shared by entries). */
  rootfs?: string;
  /** Bytes of data written at the start of the sparse memory.img. */
  memoryData?: number;
  /** Text written into every small file, to tell bundles apart. */
  tag?: string;
}

/** A directory that looks like a vmstate bundle: state, sparse memory, a disk, meta and maybe a linked root image. */
export function makeBundle(dir: string, opts: FakeBundleOptions = {}): string {
  const tag = opts.tag ?? "bundle";
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "state.vmstate"), `STASISVM ${tag}`);
  const fd = openSync(path.join(dir, "memory.img"), "w");
  try {
    writeSync(fd, Buffer.alloc(opts.memoryData ?? 64 * 1024, 1), 0, undefined, 0);
    writeSync(fd, Buffer.from(tag), 0, undefined, 512 * 1024 * 1024); // sparse: a 512 MiB file, mostly hole
  } finally {
    closeSync(fd);
  }
  writeFileSync(path.join(dir, "disk-1.img"), tag);
  writeFileSync(path.join(dir, "meta.json"), JSON.stringify({ engine: "vmstate", snappedAt: 1, tag }));
  if (opts.rootfs) linkSync(opts.rootfs, path.join(dir, "rootfs.img"));
  return dir;
}
