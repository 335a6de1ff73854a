/** What `--detach [--json]` prints about a VM it leaves running. */
import { findVm, type VmHandle } from "@stasis/runtime";
import { describeVm } from "./describe.js";
import { printJson } from "./io.js";

export interface VmIdentity {
  pid: number;
  name: string | null;
  socketPath: string;
  bootLogPath: string | null;
  forkedFrom: string | null;
}

export function identityOf(vm: VmHandle): VmIdentity {
  const entry = findVm({ pid: vm.pid });
  return {
    pid: vm.pid,
    name: entry.name ?? null,
    socketPath: entry.socketPath,
    bootLogPath: entry.bootLogPath ?? null,
    forkedFrom: entry.forkedFrom ?? null,
  };
}

/** Lets go of the VM and prints who it is: JSON, or a line on stdout plus the log path on stderr. */
export async function reportDetached(vm: VmHandle, verb: string, json: boolean): Promise<void> {
  const id = identityOf(vm);
  await vm.detach();
  if (json) {
    printJson(id);
    return;
  }
  process.stdout.write(`${verb} ${describeVm({ pid: id.pid, name: id.name ?? undefined })}, detached\n`);
  if (id.bootLogPath) process.stderr.write(`console log: ${id.bootLogPath}\n`);
}
