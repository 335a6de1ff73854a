/** What kind of KVM this host offers; decides guest-side compat choices. */
import { constants, accessSync, existsSync } from "node:fs";

export type KvmKind = "hardware" | "pvm" | "none";

/**
 * `pvm` is the software-assisted kvm_pvm backend of the project's own
 * machines (see shared/design/kvm-here.md): it works, but guest-kernel code
 * is emulated, so boots take tens of seconds and big guests take minutes
 * just to initialise memory.
 */
export function detectKvm(): KvmKind {
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch {
    return "none";
  }
  return existsSync("/sys/module/kvm_pvm") ? "pvm" : "hardware";
}
