/**
 * The config a rootfs tarball may bake in (`./stasis-config.json` at its
 * root, written by provision()): default cmd, env and cwd (api.md §1.7).
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { cacheRoot } from "../util/paths.js";

export interface ImageConfig {
  cmd?: string[];
  env?: Record<string, string>;
  cwd?: string;
}

function cacheFile(imagePath: string): string {
  const st = statSync(imagePath);
  const key = createHash("sha256").update(`${path.resolve(imagePath)}\0${st.size}\0${st.mtimeMs}`).digest("hex");
  return path.join(cacheRoot(), "image-config", `${key}.json`);
}

/** Keeps only well-formed fields; anything else in the file is ignored. */
export function sanitiseImageConfig(raw: unknown): ImageConfig | null {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return null;
  const r = raw as Record<string, unknown>;
  const out: ImageConfig = {};
  if (Array.isArray(r.cmd) && r.cmd.length > 0 && r.cmd.every((a) => typeof a === "string")) out.cmd = r.cmd as string[];
  if (r.env && typeof r.env === "object" && !Array.isArray(r.env)) {
    const env = Object.entries(r.env as Record<string, unknown>).filter(([, v]) => typeof v === "string");
    out.env = Object.fromEntries(env) as Record<string, string>;
  }
  if (typeof r.cwd === "string") out.cwd = r.cwd;
  return out;
}

function readFromTarball(imagePath: string): ImageConfig | null {
  // Both spellings of the member: tar archives made with and without "./".
  const r = spawnSync("tar", ["-xOf", imagePath, "./stasis-config.json", "stasis-config.json"], {
    stdio: ["ignore", "pipe", "ignore"],
    maxBuffer: 1024 * 1024,
  });
  const text = r.stdout?.toString() ?? "";
  if (text.trim() === "") return null;
  try {
    return sanitiseImageConfig(JSON.parse(text));
  } catch {
    return null;
  }
}

/** Pre-fills the cache for a freshly written tarball. Best effort; never throws. */
export function warmImageConfigCache(imagePath: string, config: ImageConfig | null): void {
  try {
    const file = cacheFile(imagePath);
    mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ config }));
    renameSync(tmp, file);
  } catch {
    // cache only
  }
}

export function readImageConfig(imagePath: string): ImageConfig | null {
  try {
    const cached = JSON.parse(readFileSync(cacheFile(imagePath), "utf8")) as { config: unknown };
    return cached.config === null ? null : sanitiseImageConfig(cached.config);
  } catch {
    const config = readFromTarball(imagePath);
    warmImageConfigCache(imagePath, config);
    return config;
  }
}
