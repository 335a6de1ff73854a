import type { ParsedCommand } from "../parse/parser.js";
import { completionScript, type Shell } from "../completion.js";

/** `stasis completion bash|zsh|fish` (the parser has already checked the shell name). */
export async function completionCommand(parsed: ParsedCommand): Promise<number> {
  process.stdout.write(completionScript(parsed.positionals[0] as Shell));
  return 0;
}
