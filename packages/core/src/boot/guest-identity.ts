/**
 * What makes each VM its own, cold or warm: a hostname and a machine id.
 * A warm boot restores a guest that some other boot brought up, so these
 * are never left to the guest image; they are handed over with the workload.
 */
import { randomBytes } from "node:crypto";

export interface GuestIdentity {
  hostname: string;
  machineId: string;
}

/** The agent takes 1..64 of [A-Za-z0-9.-]; a DNS label is at most 63. */
const HOSTNAME_MAX = 63;

/**
 * The VM's name made a valid hostname (every other character becomes "-",
 * so "ci/job-7" → "ci-job-7"); unnamed VMs get "stasis-<8 hex>".
 */
export function hostnameFor(name: string | undefined): string {
  const cleaned = (name ?? "")
    .replace(/[^A-Za-z0-9.-]+/g, "-")
    .slice(0, HOSTNAME_MAX)
    .replace(/^[.-]+|[.-]+$/g, "");
  return cleaned !== "" ? cleaned : `stasis-${randomBytes(4).toString("hex")}`;
}

/** 128 random bits as /etc/machine-id wants them: 32 lowercase hex digits, never all zero. */
export function newMachineId(): string {
  for (;;) {
    const id = randomBytes(16).toString("hex");
    if (!/^0+$/.test(id)) return id;
  }
}

export function guestIdentity(name: string | undefined): GuestIdentity {
  return { hostname: hostnameFor(name), machineId: newMachineId() };
}
