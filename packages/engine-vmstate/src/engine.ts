/** The vmstate SnapshotEngine: the VMM freezes and thaws the whole VM (architecture.md §5). */
import { existsSync } from "node:fs";
import path from "node:path";
import type { SnapshotEngine } from "@stasis/core";
import { SIGUSR1_SNAPSHOT_DIR, STATE_FILE } from "./bundle-files.js";
import { defaultRestoreDeps, restoreVmstate, type RestoreDeps } from "./restore.js";
import { ENGINE_NAME, snapshotVmstate } from "./snapshot.js";

export function createVmstateEngine(deps: Partial<RestoreDeps> = {}): SnapshotEngine {
  const restoreDeps = { ...defaultRestoreDeps, ...deps };
  return {
    name: ENGINE_NAME,
    recognises: (bundleDir) => existsSync(path.join(bundleDir, STATE_FILE)),
    snapshot: (vm, opts) => snapshotVmstate(vm, opts),
    restore: (bundle, opts) => restoreVmstate(bundle, opts, restoreDeps),
    // SIGUSR1 writes here (docs/vmstate.md); recorded so attach handles and `stasis` find it.
    // Given as STASIS_SNAPSHOT_PATH, the flag's documented equivalent: a VMM
    // without snapshot support ignores the variable but would refuse the flag.
    prepareBoot: ({ runDir, vmmEnv }) => {
      const vmstatePath = vmmEnv.STASIS_SNAPSHOT_PATH || path.join(runDir, SIGUSR1_SNAPSHOT_DIR);
      return { args: [], env: { STASIS_SNAPSHOT_PATH: vmstatePath }, entry: { vmstatePath } };
    },
  };
}

/** The engine with real host checks; what @stasis/runtime registers. */
export const vmstateEngine: SnapshotEngine = createVmstateEngine();
