import { list } from "@stasis/runtime";
import { hasFlag, type ParsedCommand } from "../parse/parser.js";
import { printJson } from "../lib/io.js";
import { hostRssBytes, listTable } from "../lib/list-format.js";

/** `stasis list` (ls, ps) `[--json]`: the live VMs; stale entries are pruned on the way. */
export async function listCommand(parsed: ParsedCommand): Promise<number> {
  const now = Date.now();
  const entries = [...list()].sort((a, b) => a.startedAt - b.startedAt || a.pid - b.pid);
  if (hasFlag(parsed, "json")) {
    printJson(entries.map((e) => ({ ...e, uptimeMs: Math.max(0, now - e.startedAt), hostRssBytes: hostRssBytes(e.pid) })));
  } else {
    process.stdout.write(listTable(entries, now, hostRssBytes));
  }
  return 0;
}
