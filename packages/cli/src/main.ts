/** The stasis CLI: parse, dispatch, render errors, choose the exit status. */
import { ErrorCode, ParseError, formatStasisError, isStasisError } from "@stasis/runtime";
import { agentContextCommand } from "./commands/agent-context.js";
import { attachCommand } from "./commands/attach.js";
import { bootCommand } from "./commands/boot.js";
import { completionCommand } from "./commands/completion.js";
import { execCommand } from "./commands/exec.js";
import { forkCommand } from "./commands/fork.js";
import { gcCommand } from "./commands/gc.js";
import { listCommand } from "./commands/list.js";
import { replCommand } from "./commands/repl.js";
import { restoreCommand } from "./commands/restore.js";
import { snapshotCommand } from "./commands/snapshot.js";
import { stopCommand } from "./commands/stop.js";
import { warmCommand } from "./commands/warm.js";
import { commandHelp, mainHelp } from "./help.js";
import { parseCommand, type ParsedCommand } from "./parse/parser.js";
import { findCommand } from "./parse/schema.js";
import { version } from "./version.js";

export { version };
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** One handler per schema command (a unit test checks none is missing). */
export const handlers: Record<string, (p: ParsedCommand) => Promise<number>> = {
  boot: bootCommand,
  restore: restoreCommand,
  list: listCommand,
  exec: execCommand,
  snapshot: snapshotCommand,
  fork: forkCommand,
  attach: attachCommand,
  repl: replCommand,
  stop: stopCommand,
  gc: gcCommand,
  warm: warmCommand,
  "agent-context": agentContextCommand,
  completion: completionCommand,
};

/** Runs the CLI; returns the process exit status. Never throws. */
export async function main(argv: readonly string[], out = process.stdout, err = process.stderr): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined || first === "-h" || first === "--help" || first === "help") {
      const about = first === "help" && rest[0] !== undefined ? findCommand(rest[0]) : undefined;
      if (first === "help" && rest[0] !== undefined && !about) {
        throw new ParseError(ErrorCode.PARSE_FLAG_UNKNOWN, `unknown command ${JSON.stringify(rest[0])}; run \`stasis --help\` for the list`);
      }
      out.write(about ? commandHelp(about) : mainHelp());
      return first === undefined ? EXIT_USAGE : 0;
    }
    if (first === "--version" || first === "-v") {
      out.write(`stasis ${version()}\n`);
      return 0;
    }
    const spec = findCommand(first);
    if (!spec) {
      throw new ParseError(ErrorCode.PARSE_FLAG_UNKNOWN, `unknown command ${JSON.stringify(first)}; run \`stasis --help\` for the list`);
    }
    const helpAt = rest.indexOf("--help") >= 0 ? rest.indexOf("--help") : rest.indexOf("-h");
    const dashdash = rest.indexOf("--");
    if (helpAt >= 0 && (dashdash < 0 || helpAt < dashdash)) {
      out.write(commandHelp(spec));
      return 0;
    }
    return await handlers[spec.name]!(parseCommand(spec, rest));
  } catch (e) {
    if (isStasisError(e)) {
      err.write(`stasis: ${formatStasisError(e)}\n`);
      return e instanceof ParseError ? EXIT_USAGE : EXIT_FAILURE;
    }
    err.write(`stasis: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT_FAILURE;
  }
}
