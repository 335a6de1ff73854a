/**
 * `stasis stop` (cli.md §3.9): validate the pid, SIGTERM (the VMM asks the
 * guest to shut down), SIGKILL after 2 s if it is still there — or at once
 * with `force` — then collect the entry and its artefacts.
 */
import { ErrorCode, RegistryError } from "../errors/index.js";
import { entryStatus, readAllEntries, type RegistryEntry } from "./entry.js";
import { collectEntry, type GcResult } from "./gc.js";
import { registryRoot } from "./paths.js";
import { waitForExit } from "./process-identity.js";

export interface StopOptions {
  /** SIGKILL at once. */
  force?: boolean;
  /** Report what would happen; signal and remove nothing. */
  dryRun?: boolean;
  /** Time between SIGTERM and SIGKILL. Default 2000 ms. */
  graceMs?: number;
}

export interface StopResult {
  pid: number;
  name?: string;
  /** The first signal sent (null: none, e.g. the VM was already gone or dry run). */
  signal: "SIGTERM" | "SIGKILL" | null;
  /** SIGTERM was not enough and SIGKILL followed. */
  escalated: boolean;
  dryRun: boolean;
  gc: GcResult | null;
}

const STOP_GRACE_MS = 2000;
const KILL_WAIT_MS = 10_000;

function lookup(target: { pid?: number; name?: string }): RegistryEntry {
  if ((target.pid === undefined) === (target.name === undefined)) {
    throw new RegistryError(ErrorCode.REGISTRY_VM_NOT_FOUND, "give exactly one of pid or name to stop a VM");
  }
  const matches = readAllEntries().filter((x) => (target.pid !== undefined ? x.pid === target.pid : x.name === target.name));
  const e = matches.find((x) => entryStatus(x) === "alive") ?? matches[0];
  if (!e) {
    const what = target.pid !== undefined ? `pid ${target.pid}` : `name ${JSON.stringify(target.name)}`;
    throw new RegistryError(ErrorCode.REGISTRY_VM_NOT_FOUND, `no VM registered with ${what}: \`stasis ls\` lists the running ones`);
  }
  return e;
}

function signal(pid: number, sig: "SIGTERM" | "SIGKILL"): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone in the meantime
  }
}

export async function stopVm(target: { pid?: number; name?: string }, opts: StopOptions = {}): Promise<StopResult> {
  const root = registryRoot();
  const e = lookup(target);
  const base = { pid: e.pid, ...(e.name ? { name: e.name } : {}), dryRun: opts.dryRun ?? false };
  const status = entryStatus(e);
  if (status === "recycled") {
    throw new RegistryError(
      ErrorCode.REGISTRY_VM_NOT_FOUND,
      `VM ${e.pid} is gone and its pid now belongs to another process; nothing was signalled (\`stasis gc\` removes the stale entry)`,
    );
  }
  const first = opts.force ? "SIGKILL" : "SIGTERM";
  if (opts.dryRun) {
    return { ...base, signal: status === "alive" ? first : null, escalated: false, gc: collectEntry(e, "dead", true, root) };
  }
  if (status === "dead") {
    return { ...base, signal: null, escalated: false, gc: collectEntry(e, "dead", false, root) };
  }
  signal(e.pid, first);
  let escalated = false;
  if (!(await waitForExit(e.pid, opts.force ? KILL_WAIT_MS : (opts.graceMs ?? STOP_GRACE_MS)))) {
    if (!opts.force) {
      escalated = true;
      signal(e.pid, "SIGKILL");
    }
    if (!(await waitForExit(e.pid, KILL_WAIT_MS))) {
      throw new RegistryError(ErrorCode.REGISTRY_VM_NOT_FOUND, `VM ${e.pid} did not exit after SIGKILL; it may be stuck in the kernel`);
    }
  }
  return { ...base, signal: first, escalated, gc: collectEntry(e, "dead", false, root) };
}
