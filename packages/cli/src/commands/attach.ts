import { readFileSync } from "node:fs";
import { ErrorCode, RegistryError, findVm, type VmHandle } from "@stasis/runtime";
import { flagValue, hasFlag, integer, type ParsedCommand } from "../parse/parser.js";
import { attachTarget } from "../lib/io.js";
import { tailLines } from "../lib/tail.js";
import { runPtySession } from "../tty.js";

/**
 * `stasis attach <target> [--shell <cmd>] [--tail [N]]`: an interactive pty
 * shell in the VM. Leaving the shell leaves the VM running.
 */
export async function attachCommand(parsed: ParsedCommand): Promise<number> {
  const target = parsed.positionals[0]!;
  const tail = hasFlag(parsed, "tail") ? flagValue(parsed, "tail")! : undefined;
  const lines = tail ? integer("tail", tail) : undefined;
  const vm = await attachTarget(target);
  if (tail !== undefined) {
    printBootLog(vm, target, lines);
    // Without a terminal `--tail` is a way to read the log from a script.
    if (!process.stdin.isTTY) return 0;
  }
  return runPtySession(vm, flagValue(parsed, "shell") ?? "");
}

function printBootLog(vm: VmHandle, target: string, lines: number | undefined): void {
  const entry = findVm({ pid: vm.pid });
  if (!entry.bootLogPath) {
    throw new RegistryError(
      ErrorCode.REGISTRY_VM_NOT_FOUND,
      `VM ${target} (pid ${vm.pid}) has no boot log: --tail works only for VMs booted with --detach`,
    );
  }
  let log: Buffer;
  try {
    log = readFileSync(entry.bootLogPath);
  } catch (e) {
    throw new RegistryError(ErrorCode.REGISTRY_VM_NOT_FOUND, `cannot read the boot log of VM ${target} at ${entry.bootLogPath}`, {
      cause: e,
    });
  }
  process.stdout.write(lines === undefined ? log : tailLines(log, lines));
}
