// What the benchmarks share: the built runtime, per-process RSS, rounding,
// and writing a result file to bench/results/.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** @stasis/runtime as built (run `pnpm build` first; tools/test and setup do). */
export const loadRuntime = () => import(path.join(root, "packages/runtime/dist/index.js"));

export const round = (x, d = 1) => +x.toFixed(d);

/**
 * VmRSS, RssAnon, RssFile, RssShmem of a process, in KiB, and its PSS
 * (pages shared with other processes counted by share: PSS adds up across
 * processes to the memory they really hold together).
 */
export function rss(pid) {
  const kibOf = (text) => (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);
  const status = kibOf(readFileSync(`/proc/${pid}/status`, "utf8"));
  const rollup = kibOf(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
  return {
    rss: status("VmRSS"),
    anon: status("RssAnon"),
    file: status("RssFile"),
    shmem: status("RssShmem"),
    pss: rollup("Pss"),
    pssAnon: rollup("Pss_Anon"),
    pssFile: rollup("Pss_File"),
  };
}

/** Writes `out` (which has an `at` ISO time) to bench/results/<name>-<time>.json; returns the path. */
export function writeResult(name, out) {
  const dir = path.join(root, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${out.at.replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  return file;
}
