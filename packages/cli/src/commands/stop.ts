import { stopVm, parseTarget } from "@stasis/runtime";
import { hasFlag, type ParsedCommand } from "../parse/parser.js";
import { printJson } from "../lib/io.js";
import { describeVm } from "../lib/describe.js";

/** `stasis stop <target> [--force|-9] [--dry-run] [--json]`. */
export async function stopCommand(parsed: ParsedCommand): Promise<number> {
  const result = await stopVm(parseTarget(parsed.positionals[0]!), {
    force: hasFlag(parsed, "force"),
    dryRun: hasFlag(parsed, "dry-run"),
  });
  if (hasFlag(parsed, "json")) {
    printJson(result);
    return 0;
  }
  const vm = describeVm(result);
  if (result.dryRun) {
    process.stdout.write(`would stop ${vm} with ${result.signal ?? "no signal (already gone)"}\n`);
  } else if (result.signal === null) {
    process.stdout.write(`${vm} was already gone; cleaned up\n`);
  } else {
    process.stdout.write(`stopped ${vm}${result.escalated ? " (did not exit on SIGTERM: SIGKILLed)" : result.signal === "SIGKILL" ? " (SIGKILL)" : ""}\n`);
  }
  if (result.gc && result.gc.failedPaths.length > 0) {
    process.stderr.write(`stasis: could not remove: ${result.gc.failedPaths.join(", ")}\n`);
  }
  return 0;
}
