/**
 * The last step of every boot with a vsock bridge: hand the guest its
 * workload (agent `start`). When the guest refuses it (its cwd is missing,
 * …), /init says why on the console and the VM ends with 125, exactly as a
 * bad initramfs config would: a foreground VM is returned so wait() reports
 * that; a detached one has no caller watching it, so it is stopped and the
 * refusal thrown.
 */
import { handOverGuest, type HandOver } from "../agent/hand-over.js";
import { BootError, ErrorCode, isStasisError } from "../errors/index.js";
import type { PhaseTimer } from "../log/events.js";
import { isRunning } from "../registry/process-identity.js";
import type { VmHandle } from "./handle.js";

export interface StartPolicy {
  detached: boolean;
  /**
   * A foreground cold boot: a guest that ended before taking its workload
   * (its root disk would not mount, …) is returned, and wait() tells how it
   * ended. A warm boot's guest must not end there: that is the cache
   * entry's fault, so it is an error for the caller to act on.
   */
  returnEndedVm: boolean;
}

export async function startWorkload(handle: VmHandle, vsockPath: string, phases: PhaseTimer, h: HandOver, policy: StartPolicy): Promise<void> {
  try {
    await handOverGuest(vsockPath, phases, h);
  } catch (err) {
    const refused = isStasisError(err, ErrorCode.BOOT_WORKLOAD_REFUSED);
    if (!policy.detached && (refused || (policy.returnEndedVm && !isRunning(handle.pid)))) return;
    await handle.kill();
    if (refused || isStasisError(err)) throw err;
    throw new BootError(ErrorCode.BOOT_WORKLOAD_REFUSED, `the guest did not take its workload: ${(err as Error).message}; the VM was stopped`, { cause: err });
  }
}
