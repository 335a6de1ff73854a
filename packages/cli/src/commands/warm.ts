import {
  ErrorCode,
  ParseError,
  WARM_SIZE_FORMS,
  listWarm,
  parseWarmSize,
  pruneWarm,
  removeWarm,
  allWarmKeys,
  resolveWarmKeys,
  warmMaxBytes,
} from "@stasis/runtime";
import { printJson } from "../lib/io.js";
import { warmPruneReport, warmRmReport, warmTable } from "../lib/warm-format.js";
import { flagValue, hasFlag, type ParsedCommand } from "../parse/parser.js";

/** The flags each action takes (--json: all of them). */
const ACTION_FLAGS: Record<string, string[]> = { ls: [], rm: ["all"], prune: ["max-size"] };

function checkUsage(parsed: ParsedCommand, action: string, keys: readonly string[]): void {
  for (const flag of parsed.flags.keys()) {
    if (flag === "json" || ACTION_FLAGS[action]!.includes(flag)) continue;
    const owner = Object.keys(ACTION_FLAGS).find((a) => ACTION_FLAGS[a]!.includes(flag));
    throw new ParseError(ErrorCode.PARSE_FLAG_UNKNOWN, `--${flag} is for \`stasis warm ${owner}\`, not \`stasis warm ${action}\``);
  }
  if (action !== "rm" && keys.length > 0) {
    throw new ParseError(ErrorCode.PARSE_FLAG_UNKNOWN, `unexpected argument ${JSON.stringify(keys[0])}: \`stasis warm ${action}\` takes no keys (see \`stasis warm --help\`)`);
  }
  if (action === "rm" && keys.length === 0 && !hasFlag(parsed, "all")) {
    throw new ParseError(ErrorCode.PARSE_FLAG_MISSING_VALUE, "`stasis warm rm` needs the keys to remove (see `stasis warm ls`), or --all");
  }
  if (action === "rm" && keys.length > 0 && hasFlag(parsed, "all")) {
    throw new ParseError(ErrorCode.PARSE_FLAG_MALFORMED, "`stasis warm rm` takes keys or --all, not both");
  }
}

function maxSize(parsed: ParsedCommand): number {
  const text = flagValue(parsed, "max-size");
  if (text === undefined) return warmMaxBytes();
  const bytes = parseWarmSize(text);
  if (bytes === undefined) throw new ParseError(ErrorCode.PARSE_FLAG_MALFORMED, `--max-size ${text}: expected ${WARM_SIZE_FORMS}`);
  return bytes;
}

/** `stasis warm ls [--json]`, `warm rm <key>...|--all [--json]`, `warm prune [--max-size <size>] [--json]`. */
export async function warmCommand(parsed: ParsedCommand): Promise<number> {
  const [action, ...keys] = parsed.positionals as [string, ...string[]];
  checkUsage(parsed, action, keys);
  const json = hasFlag(parsed, "json");
  if (action === "ls") {
    const entries = listWarm();
    if (json) printJson(entries);
    else process.stdout.write(warmTable(entries, Date.now()));
    return 0;
  }
  if (action === "rm") {
    // Every key is resolved before anything is removed: one bad key removes nothing.
    const full = hasFlag(parsed, "all") ? allWarmKeys() : resolveWarmKeys(keys);
    const removed = removeWarm(full);
    if (json) printJson(removed);
    else process.stdout.write(warmRmReport(removed));
    return 0;
  }
  const result = pruneWarm({ maxBytes: maxSize(parsed) });
  if (json) printJson(result);
  else process.stdout.write(warmPruneReport(result));
  return 0;
}
