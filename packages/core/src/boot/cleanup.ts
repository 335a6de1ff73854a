/**
 * Last-resort cleanup for this process's VMs: if Node exits while VMs are
 * running (an uncaught error, process.exit), kill them and remove their
 * per-boot files and registry entries synchronously. Signal deaths are
 * covered by pdeathsig on the VMM side and by `stasis gc`; the CLI turns
 * SIGINT/SIGTERM into an orderly stop.
 */
import { rmSync } from "node:fs";

interface Live {
  pid: number;
  paths: string[];
  unregister?: () => void;
}

const live = new Map<number, Live>();
let hooked = false;

function onExit(): void {
  for (const vm of live.values()) {
    try {
      process.kill(vm.pid, "SIGKILL");
    } catch {
      // already gone
    }
    for (const p of vm.paths) rmSync(p, { recursive: true, force: true });
    try {
      vm.unregister?.();
    } catch {
      // best effort on the way out
    }
  }
  live.clear();
}

export function trackVm(pid: number, paths: string[], unregister?: () => void): void {
  if (!hooked) {
    process.on("exit", onExit);
    hooked = true;
  }
  live.set(pid, { pid, paths, unregister });
}

export function untrackVm(pid: number): void {
  live.delete(pid);
}
