/**
 * Waiting for another boot's fill of a key: until its entry is published,
 * its claim goes (the fill failed or its process died), or the deadline.
 */
import { statSync } from "node:fs";
import path from "node:path";
import { claimPath, isHolderAlive, readClaim } from "./fill-claim.js";
import { RECORD_FILE, checkKey, warmRoot } from "./paths.js";

export type FillWaitOutcome = "published" | "abandoned" | "timeout";

export interface FillWaitOptions {
  /** null: no deadline. */
  timeoutMs: number | null;
  pollMs?: number;
  root?: string;
}

function published(key: string, root: string): boolean {
  try {
    return statSync(path.join(root, key, RECORD_FILE)).isFile();
  } catch {
    return false;
  }
}

export async function waitForFill(key: string, opts: FillWaitOptions): Promise<FillWaitOutcome> {
  checkKey(key);
  const root = opts.root ?? warmRoot();
  const pollMs = opts.pollMs ?? 250;
  const deadline = opts.timeoutMs === null ? Infinity : Date.now() + opts.timeoutMs;
  const claim = claimPath(key, root);
  for (;;) {
    if (published(key, root)) return "published";
    const holder = readClaim(claim);
    if (!holder || !isHolderAlive(holder)) return published(key, root) ? "published" : "abandoned";
    if (Date.now() >= deadline) return "timeout";
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
  }
}
