/**
 * The warm boot cache (docs/warm-boot.md): snapshots of freshly booted,
 * idle VMs, keyed by everything the boot was made of, so a later boot of
 * the same inputs restores instead of booting.
 */
export { warmRoot, fillPath, warmEntryDir, isWarmKey } from "./paths.js";
export { WARM_FORMAT, warmKey, describeInputs, type WarmInputs, type WarmInputsRecord, type WarmFileRecord } from "./key.js";
export type { WarmRecord } from "./record.js";
export { lookupWarm, type WarmHit } from "./lookup.js";
export { publishWarm, type PublishOutcome } from "./publish.js";
export { discardWarm } from "./discard.js";
export { listWarm, type WarmEntry } from "./list.js";
export {
  pruneWarm,
  type PruneWarmOptions,
  type PruneWarmResult,
  type WarmRemoval,
  type WarmRemovalReason,
} from "./prune.js";
export { resolveWarmKeys, removeWarm, allWarmKeys } from "./remove.js";
export { warmMaxBytes, parseWarmSize, DEFAULT_WARM_MAX_BYTES, WARM_SIZE_FORMS } from "./size.js";
export { WarmError } from "./errors.js";
export { claimFill, type FillClaim, type ClaimHolder, type ClaimOutcome } from "./fill-claim.js";
export { waitForFill, type FillWaitOutcome, type FillWaitOptions } from "./fill-wait.js";
