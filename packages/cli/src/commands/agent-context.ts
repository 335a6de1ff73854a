import type { ParsedCommand } from "../parse/parser.js";
import { agentContext } from "../agent-context.js";
import { printJson } from "../lib/io.js";
import { version } from "../version.js";

/** `stasis agent-context`: the CLI described as one JSON document. */
export async function agentContextCommand(_parsed: ParsedCommand): Promise<number> {
  printJson(agentContext(version()));
  return 0;
}
