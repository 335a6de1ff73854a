/** The stasis CLI: parse, dispatch, render errors, choose the exit status. */
import { readFileSync } from "node:fs";
import { ErrorCode, ParseError, formatStasisError, isStasisError } from "@stasis/runtime";
import { bootCommand } from "./commands/boot.js";
import { commandHelp, mainHelp } from "./help.js";
import { parseCommand } from "./parse/parser.js";
import { commands } from "./parse/schema.js";

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

const handlers: Record<string, (p: ReturnType<typeof parseCommand>) => Promise<number>> = {
  boot: bootCommand,
};

/** Runs the CLI; returns the process exit status. Never throws. */
export async function main(argv: readonly string[], out = process.stdout, err = process.stderr): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined || first === "-h" || first === "--help" || first === "help") {
      out.write(mainHelp());
      return first === undefined ? EXIT_USAGE : 0;
    }
    if (first === "--version" || first === "-v") {
      out.write(`stasis ${version()}\n`);
      return 0;
    }
    const spec = commands.find((c) => c.name === first || c.aliases?.includes(first));
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
