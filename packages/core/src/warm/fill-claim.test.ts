/**
 * Fill claims and waiting for a fill (docs/warm-boot.md, W5): one boot of a
 * new shape fills, the others wait for its entry.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { processStartTicks } from "../registry/process-identity.js";
import { claimPath } from "./fill-claim.js";
import { claimFill, publishWarm, pruneWarm, waitForFill, warmKey } from "./index.js";
import { makeBundle, makeInputs, tempCache } from "./testing/fixtures.js";

const t = tempCache("claim");
afterAll(() => t.done());

/** A pid that was a process a moment ago and is no longer. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

const inputs = makeInputs(t.dir);
let n = 0;
const freshKey = () => warmKey({ ...inputs, memoryMib: 1000 + n++ });


describe("fill claims", () => {
  it("the first boot gets the claim, the next is told who holds it; release frees it", () => {
    const key = freshKey();
    const first = claimFill(key);
    expect("claim" in first).toBe(true);
    const second = claimFill(key);
    expect(second).toEqual({ heldBy: { pid: process.pid, startTicks: expect.any(Number) } });
    if ("claim" in first) {
      first.claim.release();
      first.claim.release(); // idempotent
    }
    expect(existsSync(claimPath(key))).toBe(false);
    const third = claimFill(key);
    expect("claim" in third).toBe(true);
    if ("claim" in third) third.claim.release();
  });

  it("a claim of a process that is gone, or an unreadable one, is taken over", () => {
    for (const content of [JSON.stringify({ pid: deadPid() }), "not json", JSON.stringify({ pid: -4 })]) {
      const key = freshKey();
      mkdirSync(t.root, { recursive: true });
      writeFileSync(claimPath(key), content);
      const got = claimFill(key);
      expect("claim" in got, content).toBe(true);
      if ("claim" in got) got.claim.release();
    }
  });

  it("a claim whose pid was reused by another process (start time differs) is stale", () => {
    const key = freshKey();
    mkdirSync(t.root, { recursive: true });
    writeFileSync(claimPath(key), JSON.stringify({ pid: process.pid, startTicks: 1 }));
    const got = claimFill(key);
    expect("claim" in got).toBe(true);
    if ("claim" in got) got.claim.release();
  });

  it("releasing leaves a claim someone else took over alone", () => {
    const key = freshKey();
    const mine = claimFill(key);
    if (!("claim" in mine)) throw new Error("expected the claim");
    writeFileSync(claimPath(key), JSON.stringify({ pid: 1 }));
    mine.claim.release();
    expect(existsSync(claimPath(key))).toBe(true);
    writeFileSync(claimPath(key), JSON.stringify({ pid: deadPid() }));
  });

  it("prune removes claims of processes that are gone and keeps live ones", () => {
    const dead = freshKey();
    writeFileSync(claimPath(dead), JSON.stringify({ pid: deadPid() }));
    const live = freshKey();
    const held = claimFill(live);
    pruneWarm({ maxBytes: 1 << 30 });
    expect(existsSync(claimPath(dead))).toBe(false);
    expect(existsSync(claimPath(live))).toBe(true);
    if ("claim" in held) held.claim.release();
  });
});

describe("waiting for a fill", () => {
  it("ends when the holder publishes the entry", async () => {
    const key = freshKey();
    const held = claimFill(key);
    if (!("claim" in held)) throw new Error("expected the claim");
    const waiting = waitForFill(key, { timeoutMs: 10_000, pollMs: 20 });
    setTimeout(() => {
      const dir = makeBundle(path.join(t.root, `.fill-${key}-${process.pid}-1`));
      publishWarm(key, dir, inputs);
      held.claim.release();
    }, 100);
    expect(await waiting).toBe("published");
  });

  it("ends as abandoned when the holder gives up without an entry, or is gone", async () => {
    const key = freshKey();
    const held = claimFill(key);
    if (!("claim" in held)) throw new Error("expected the claim");
    setTimeout(() => held.claim.release(), 100);
    expect(await waitForFill(key, { timeoutMs: 10_000, pollMs: 20 })).toBe("abandoned");
    writeFileSync(claimPath(key), JSON.stringify({ pid: deadPid() }));
    expect(await waitForFill(key, { timeoutMs: 10_000, pollMs: 20 })).toBe("abandoned");
  });

  it("another process's claim holds while it runs and is abandoned when it dies mid-fill", async () => {
    const key = freshKey();
    const other = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      await new Promise((r) => setTimeout(r, 50));
      writeFileSync(claimPath(key), JSON.stringify({ pid: other.pid, startTicks: processStartTicks(other.pid!) }));
      expect(claimFill(key)).toEqual({ heldBy: { pid: other.pid, startTicks: expect.any(Number) } });
      const waiting = waitForFill(key, { timeoutMs: 10_000, pollMs: 20 });
      setTimeout(() => other.kill("SIGKILL"), 100);
      expect(await waiting).toBe("abandoned");
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("ends at its deadline while the holder still fills", async () => {
    const key = freshKey();
    const held = claimFill(key);
    const t0 = Date.now();
    expect(await waitForFill(key, { timeoutMs: 150, pollMs: 20 })).toBe("timeout");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    if ("claim" in held) held.claim.release();
  });

  it("a root nobody can write still gives a claim (that holds nothing)", () => {
    const file = path.join(t.dir, "a-file");
    writeFileSync(file, "");
    const got = claimFill(freshKey(), path.join(file, "warm"));
    expect("claim" in got).toBe(true);
  });
});
