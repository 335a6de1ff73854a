/**
 * The cache key: what a warm entry was booted from. Two boots share an
 * entry only when every input below is the same; any change to any of them
 * (a rebuilt kernel, another rootfs tarball, one more MiB, another VMM flag)
 * gives another key, so a stale entry is never restored, only left to age
 * out of the cache.
 */
import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import path from "node:path";
import { sha256FileMemo } from "../image/content-hash.js";
import { MEMO_DIR, warmRoot } from "./paths.js";

/**
 * Version of the store layout and of the key's canonical form. Bumping it
 * changes every key, so entries written by another layout are never read.
 */
export const WARM_FORMAT = 1;

/** Everything that decides what a boot's idle guest looks like. */
export interface WarmInputs {
  /** The VMM executable. */
  vmm: string;
  kernel: string;
  /** The guest init binary. */
  init: string;
  /** The guest agent binary. */
  agent: string;
  /** The rootfs tarball. */
  image: string;
  memoryMib: number;
  cpus: number;
  /** Size of the writable (upper) disk, bytes. */
  upperBytes: number;
  /** The KVM backend, as detectKvm() names it. */
  kvm: string;
  /** Extra VMM argv, in order. */
  args: string[];
  /** Environment given to the VMM. */
  vmmEnv: Record<string, string>;
}

/** One input file as recorded with an entry. */
export interface WarmFileRecord {
  path: string;
  bytes: number;
  sha256: string;
}

/** The inputs that are files. */
type FileInput = "vmm" | "kernel" | "init" | "agent" | "image";

/** The inputs of an entry, human-readable (warm.json's `inputs`): each file as path, size and hash. */
export type WarmInputsRecord = Omit<WarmInputs, FileInput> & Record<FileInput, WarmFileRecord>;

const FILES = ["vmm", "kernel", "init", "agent", "image"] as const;

function checkInputs(inputs: WarmInputs): void {
  for (const f of FILES) {
    if (typeof inputs[f] !== "string" || inputs[f] === "") throw new TypeError(`warm inputs: ${f} must be a file path, got ${JSON.stringify(inputs[f])}`);
  }
  for (const n of ["memoryMib", "cpus", "upperBytes"] as const) {
    if (!Number.isSafeInteger(inputs[n]) || inputs[n] < 0) throw new TypeError(`warm inputs: ${n} must be a whole number, got ${JSON.stringify(inputs[n])}`);
  }
  if (typeof inputs.kvm !== "string") throw new TypeError(`warm inputs: kvm must be a string, got ${JSON.stringify(inputs.kvm)}`);
  if (!Array.isArray(inputs.args) || !inputs.args.every((a) => typeof a === "string")) {
    throw new TypeError(`warm inputs: args must be a list of strings, got ${JSON.stringify(inputs.args)}`);
  }
  const env = inputs.vmmEnv;
  if (env === null || typeof env !== "object" || Array.isArray(env) || !Object.values(env).every((v) => typeof v === "string")) {
    throw new TypeError(`warm inputs: vmmEnv must map names to strings, got ${JSON.stringify(env)}`);
  }
}

function sortedEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(env).sort()) out[k] = env[k]!;
  return out;
}

function fileSha(file: string, root: string): string {
  return sha256FileMemo(file, path.join(root, MEMO_DIR));
}

/**
 * The record of `inputs` kept in warm.json: absolute paths, sizes and
 * content hashes of the files, and the rest as given (vmmEnv sorted).
 * Reads (or recalls) the files' hashes; throws the fs error when a file
 * cannot be read.
 */
export function describeInputs(inputs: WarmInputs, root = warmRoot()): WarmInputsRecord {
  checkInputs(inputs);
  const file = (p: string): WarmFileRecord => {
    const abs = path.resolve(p);
    return { path: abs, bytes: statSync(abs).size, sha256: fileSha(abs, root) };
  };
  return {
    vmm: file(inputs.vmm),
    kernel: file(inputs.kernel),
    init: file(inputs.init),
    agent: file(inputs.agent),
    image: file(inputs.image),
    memoryMib: inputs.memoryMib,
    cpus: inputs.cpus,
    upperBytes: inputs.upperBytes,
    kvm: inputs.kvm,
    args: [...inputs.args],
    vmmEnv: sortedEnv(inputs.vmmEnv),
  };
}

/**
 * The key of `inputs`: the first 32 hex digits of the sha256 of a canonical
 * JSON of WARM_FORMAT, the contents (not the paths) of the five files and
 * the other inputs. File hashes are remembered under `<root>/.hashes` by
 * (path, inode, size, mtime), so a repeated call reads no file.
 */
export function warmKey(inputs: WarmInputs, root = warmRoot()): string {
  checkInputs(inputs);
  // Fixed field order, arrays for everything ordered: one text per input set.
  const canonical = JSON.stringify([
    ["format", WARM_FORMAT],
    ["files", FILES.map((f) => [f, fileSha(inputs[f], root)])],
    ["memoryMib", inputs.memoryMib],
    ["cpus", inputs.cpus],
    ["upperBytes", inputs.upperBytes],
    ["kvm", inputs.kvm],
    ["args", inputs.args],
    ["vmmEnv", Object.entries(sortedEnv(inputs.vmmEnv))],
  ]);
  return createHash("sha256").update(canonical).digest("hex").slice(0, 32);
}
