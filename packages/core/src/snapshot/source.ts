/** A SnapshotSource from a registry entry plus how its owner learns that the VMM is gone. */
import type { RegistryEntry } from "../registry/entry.js";
import { runGc } from "../registry/gc.js";
import { waitForExit } from "../registry/process-identity.js";
import type { SnapshotSource } from "./engine.js";

/** `p`, or a rejection naming `what` after `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => t && clearTimeout(t)),
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
    }),
  ]);
}

export interface SourceOwner {
  /** Resolves once the VMM has exited and the owner cleaned up after it; rejects after `timeoutMs`. */
  gone(timeoutMs: number): Promise<void>;
  kill(): Promise<void>;
}

export function sourceFromEntry(entry: RegistryEntry, owner: SourceOwner): SnapshotSource {
  return {
    pid: entry.pid,
    ...(entry.name !== undefined ? { name: entry.name } : {}),
    entry,
    ...(entry.controlPath !== undefined ? { controlPath: entry.controlPath } : {}),
    ...(entry.imagePath !== undefined ? { imagePath: entry.imagePath } : {}),
    ...(entry.rootImgPath !== undefined ? { rootImg: entry.rootImgPath } : {}),
    ...(entry.runDir !== undefined ? { runDir: entry.runDir } : {}),
    awaitGone: (ms) => owner.gone(ms),
    kill: () => owner.kill(),
  };
}

/**
 * For a VM this process does not own: poll until the pid is gone, then
 * collect its entry, name and files the way `stasis gc` would.
 */
export function registryOwner(entry: RegistryEntry, kill: () => Promise<void>): SourceOwner {
  return {
    async gone(ms) {
      if (!(await waitForExit(entry.pid, ms))) throw new Error(`VM ${entry.pid} did not exit within ${ms} ms`);
      runGc({ pid: entry.pid });
    },
    kill,
  };
}
