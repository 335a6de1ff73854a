import { ErrorCode, ParseError } from "@stasis/runtime";
import { attachTarget } from "../lib/io.js";
import { flagValue, hasFlag, vmName, type ParsedCommand } from "../parse/parser.js";
import { foregroundStreams, runInForeground } from "../lib/foreground.js";
import { reportDetached } from "../lib/identity.js";

/**
 * `stasis fork <target> [--new-name n] [--out-dir d] [--detach [--json]] [--tcp-keep]`:
 * snapshot with the source left running, then restore as a sibling. In the
 * foreground the fork's output streams here and its guest status is ours.
 */
export async function forkCommand(parsed: ParsedCommand): Promise<number> {
  const name = vmName("new-name", flagValue(parsed, "new-name"));
  const outDir = flagValue(parsed, "out-dir");
  const detached = hasFlag(parsed, "detach");
  const json = hasFlag(parsed, "json");
  if (json && !detached) {
    throw new ParseError(ErrorCode.PARSE_FLAG_MALFORMED, "--json needs --detach (a foreground fork prints the guest's own output)");
  }
  const source = await attachTarget(parsed.positionals[0]!);
  const common = { name, outDir, tcpKeep: hasFlag(parsed, "tcp-keep") };
  if (detached) {
    const vm = await source.fork({ ...common, detached: true });
    await reportDetached(vm, "forked", json);
    return 0;
  }
  const vm = await source.fork({ ...common, timeoutMs: null, ...foregroundStreams() });
  return runInForeground(vm);
}
