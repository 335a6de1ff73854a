// What the benchmarks share: the built runtime, per-process RSS, rounding,
// and writing a result file to bench/results/.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** @stasis/runtime as built (run `pnpm build` first; tools/test and setup do). */
export const loadRuntime = () => import(path.join(root, "packages/runtime/dist/index.js"));

export const round = (x, d = 1) => +x.toFixed(d);

/** VmRSS, RssAnon, RssFile, RssShmem of a process, in KiB. */
export function rss(pid) {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)?.[1] ?? 0);
  return { rss: kib("VmRSS"), anon: kib("RssAnon"), file: kib("RssFile"), shmem: kib("RssShmem") };
}

/** Writes `out` (which has an `at` ISO time) to bench/results/<name>-<time>.json; returns the path. */
export function writeResult(name, out) {
  const dir = path.join(root, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${out.at.replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  return file;
}
