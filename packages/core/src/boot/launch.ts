/** Starting a VMM from a plan, in the foreground (our child) or detached (the registry's). */
import type { VmHandle } from "./handle.js";
import { launchDetached } from "./launch-detached.js";
import { launchForeground } from "./launch-foreground.js";
import type { LaunchMode, LaunchPlan } from "./launch-plan.js";

export function launchVm(plan: LaunchPlan, mode: LaunchMode): Promise<VmHandle> {
  return mode.detached === true ? launchDetached(plan) : launchForeground(plan, mode);
}
