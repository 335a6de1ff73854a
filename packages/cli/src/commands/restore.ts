import { ErrorCode, ParseError, restore } from "@stasis/runtime";
import { flagValue, hasFlag, vmName, type ParsedCommand } from "../parse/parser.js";
import { foregroundStreams, runInForeground } from "../lib/foreground.js";
import { reportDetached } from "../lib/identity.js";

/**
 * `stasis restore <snap-dir> [--name n] [--image tar] [--detach [--json]]`:
 * in the foreground the restored VM's output streams here and its guest
 * status is ours; with --detach it is left running once its vCPUs run.
 */
export async function restoreCommand(parsed: ParsedCommand): Promise<number> {
  const snapDir = parsed.positionals[0]!;
  const name = vmName("name", flagValue(parsed, "name"));
  const image = flagValue(parsed, "image");
  const detached = hasFlag(parsed, "detach");
  const json = hasFlag(parsed, "json");
  if (json && !detached) {
    throw new ParseError(ErrorCode.PARSE_FLAG_MALFORMED, "--json needs --detach (a foreground restore prints the guest's own output)");
  }
  if (detached) {
    const vm = await restore({ snapDir, name, image, detached: true });
    await reportDetached(vm, "restored", json);
    return 0;
  }
  const vm = await restore({ snapDir, name, image, timeoutMs: null, ...foregroundStreams() });
  return runInForeground(vm);
}
