/**
 * `meta.json`, the one file every bundle has (api.md §4.3): who wrote the
 * bundle, from which VM and image, and what else is in it. Read at the edge
 * of every restore, so a garbled file is named precisely instead of failing
 * somewhere inside an engine.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { BootError, ErrorCode, SnapshotError } from "../errors/index.js";

export const META_FILE = "meta.json";

export interface SnapshotMeta {
  /** Writer engine. Absent (older bundles) ⇒ criu. */
  engine?: string;
  sourceName?: string;
  /** Absolute path of the source's rootfs tarball; restore's default image. */
  sourceImage?: string;
  /** ms epoch at which the snapshot was taken. */
  snappedAt: number;
  /** ISO-8601 time the bundle was written (ours). */
  createdAt?: string;
  /** Guest RAM of the source, MiB (ours). */
  memoryMib?: number;
  /** vCPUs of the source (ours). */
  cpus?: number;
  /** VMM pid of the source (ours). */
  sourcePid?: number;
  /** The bundle the source itself was restored or forked from: lineage (ours). */
  forkedFrom?: string;
  /** Bundle-relative file name of the root disk image, when the bundle carries one (ours). */
  rootfs?: string;
  /** Scratch (fork) bundles without their own root image: the cached image used, by absolute path (ours). */
  rootfsPath?: string;
  /** Bundle-relative names of the files the engine wrote (ours). */
  files?: string[];
  mountDisk?: { guest: string; lower: string; upper: string };
  liveMounts?: { guest: string; host: string; mode: "ro" | "rw" }[];
}

type Check = (v: unknown) => boolean;
const isString: Check = (v) => typeof v === "string" && v.length > 0;
const isCount: Check = (v) => typeof v === "number" && Number.isInteger(v) && v > 0;
const isTime: Check = (v) => typeof v === "number" && Number.isFinite(v) && v >= 0;
const isAbsolute: Check = (v) => isString(v) && path.isAbsolute(v as string);
/** A plain name inside the bundle: never a path that could leave it. */
const isBundleFile: Check = (v) =>
  isString(v) && !(v as string).includes("\0") && !path.isAbsolute(v as string) &&
  (v as string).split("/").every((seg) => seg !== "" && seg !== "." && seg !== "..");
const isIsoTime: Check = (v) => isString(v) && !Number.isNaN(Date.parse(v as string));

const optional: Record<string, [Check, string]> = {
  engine: [isString, "a non-empty string"],
  sourceName: [isString, "a non-empty string"],
  sourceImage: [isAbsolute, "an absolute path"],
  createdAt: [isIsoTime, "an ISO-8601 time"],
  memoryMib: [isCount, "a positive integer"],
  cpus: [isCount, "a positive integer"],
  sourcePid: [isCount, "a positive integer"],
  forkedFrom: [isAbsolute, "an absolute path"],
  rootfs: [isBundleFile, "a file name inside the bundle"],
  rootfsPath: [isAbsolute, "an absolute path"],
  files: [(v) => Array.isArray(v) && v.every(isBundleFile), "a list of file names inside the bundle"],
  mountDisk: [
    (v) => typeof v === "object" && v !== null && isString((v as Record<string, unknown>).guest) &&
      isBundleFile((v as Record<string, unknown>).lower) && isBundleFile((v as Record<string, unknown>).upper),
    "{ guest, lower, upper } with file names inside the bundle",
  ],
  liveMounts: [
    (v) => Array.isArray(v) && v.every((m) => typeof m === "object" && m !== null && isString(m.guest) && isAbsolute(m.host) && (m.mode === "ro" || m.mode === "rw")),
    "a list of { guest, host (absolute), mode: ro|rw }",
  ],
};

function invalid(where: string, why: string): SnapshotError {
  return new SnapshotError(
    ErrorCode.SNAPSHOT_BUNDLE_INVALID,
    `${where} is not a valid bundle meta.json: ${why}; the bundle is damaged or was not written by stasis — take a new snapshot`,
  );
}

/** Checks a parsed meta.json; SNAPSHOT_BUNDLE_INVALID names the first bad field. Unknown fields are kept. */
export function validateMeta(value: unknown, where = META_FILE): SnapshotMeta {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw invalid(where, "it is not a JSON object");
  const v = value as Record<string, unknown>;
  if (!isTime(v.snappedAt)) throw invalid(where, "snappedAt must be a time in ms since the epoch");
  for (const [field, [check, what]] of Object.entries(optional)) {
    if (v[field] !== undefined && !check(v[field])) throw invalid(where, `${field} must be ${what}, got ${JSON.stringify(v[field])}`);
  }
  return v as unknown as SnapshotMeta;
}

/** Reads `<bundleDir>/meta.json`: missing → BOOT_SNAPSHOT_NOT_FOUND; unreadable or invalid → SNAPSHOT_BUNDLE_INVALID. */
export function readMeta(bundleDir: string): SnapshotMeta {
  const file = path.join(bundleDir, META_FILE);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new BootError(ErrorCode.BOOT_SNAPSHOT_NOT_FOUND, `${bundleDir} is not a snapshot bundle: it has no ${META_FILE}`);
    }
    throw new SnapshotError(ErrorCode.SNAPSHOT_BUNDLE_INVALID, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalid(file, `it is not JSON (${(err as Error).message})`);
  }
  return validateMeta(parsed, file);
}

/** Writes `<bundleDir>/meta.json` after validating it (a writer bug must not produce an unreadable bundle). */
export function writeMeta(bundleDir: string, meta: SnapshotMeta): void {
  validateMeta(JSON.parse(JSON.stringify(meta)), "the meta.json being written");
  writeFileSync(path.join(bundleDir, META_FILE), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o644 });
}
