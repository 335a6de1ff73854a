/**
 * Two processes fill and publish the same keys at the same instant
 * (testing/publish-child.mjs, run on these very sources; one goes through the
 * keys forwards, the other backwards, so they collide where they meet): for
 * every key one wins, the other loses, and the entry is wholly the winner's.
 */
import { spawn } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { listWarm, lookupWarm, warmKey } from "./index.js";
import { makeInputs, tempCache } from "./testing/fixtures.js";

const t = tempCache("race");
afterAll(() => t.done());
const testing = path.join(path.dirname(fileURLToPath(import.meta.url)), "testing");

interface ChildResult {
  pid: number;
  tag: string;
  outcomes: Record<string, "published" | "lost">;
}

function startChild(tag: string, goFile: string, inputsJson: string, keys: string[]) {
  const child = spawn(
    process.execPath,
    ["--import", path.join(testing, "register-ts.mjs"), path.join(testing, "publish-child.mjs"), tag, goFile, inputsJson, ...keys],
    { env: { ...process.env, STASIS_WARM_DIR: t.root }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    const check = () => (out.startsWith("ready\n") ? resolve() : undefined);
    child.stdout.on("data", check);
    child.on("exit", (code) => reject(new Error(`child ${tag} exited ${code} before ready: ${err}`)));
  });
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`child ${tag} exited ${code}: ${err}`));
      resolve(JSON.parse(out.split("\n")[1]!) as ChildResult);
    });
  });
  return { ready, done };
}

describe("concurrent fills of one key", () => {
  it("exactly one publish per key wins; entries are never mixed; losers leave nothing", async () => {
    const base = makeInputs(t.dir);
    const keys = Array.from({ length: 40 }, (_, i) => warmKey({ ...base, memoryMib: 256 + i }));
    const goFile = path.join(t.dir, "go");
    const inputsJson = JSON.stringify(base);
    const a = startChild("A", goFile, inputsJson, keys);
    const b = startChild("B", goFile, inputsJson, [...keys].reverse());
    await Promise.all([a.ready, b.ready]);
    writeFileSync(goFile, "");
    const [ra, rb] = await Promise.all([a.done, b.done]);
    let wonByA = 0;
    for (const key of keys) {
      const outcomes = [ra.outcomes[key], rb.outcomes[key]].sort();
      expect(outcomes, key).toEqual(["lost", "published"]);
      const winner = ra.outcomes[key] === "published" ? "A" : "B";
      if (winner === "A") wonByA++;
      const dir = path.join(t.root, key);
      for (const f of ["state.vmstate", "disk-1.img"]) expect(readFileSync(path.join(dir, f), "utf8"), `${key} ${f}`).toContain(winner);
      expect(JSON.parse(readFileSync(path.join(dir, "meta.json"), "utf8")).tag).toBe(winner);
      expect(lookupWarm(key)?.key).toBe(key);
    }
    expect(listWarm()).toHaveLength(keys.length);
    expect(readdirSync(t.root).filter((n) => n.startsWith(".") && n !== ".hashes")).toEqual([]);
    // Not an assertion on scheduling, just a record of how contended the run was.
    console.log(`publish race: A won ${wonByA} of ${keys.length} keys, B ${keys.length - wonByA}`);
  }, 60_000);
});
