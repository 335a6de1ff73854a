import { keyValues, absolutePath, flagValue, hasFlag, type ParsedCommand } from "../parse/parser.js";
import { attachTarget, sink } from "../lib/io.js";
import { shellQuote } from "../lib/quote.js";
import { runPtySession } from "../tty.js";

/** Exit status when our own stdout reader went away (like a shell's SIGPIPE death). */
const EXIT_BROKEN_PIPE = 128 + 13;
const EXIT_INTERRUPTED = 128 + 2;

/** `stasis exec <target> [--tty] [--env K=V]… [--cwd /abs] -- <cmd…>`: exits with the command's status. */
export async function execCommand(parsed: ParsedCommand): Promise<number> {
  const env = keyValues("env", parsed.flags.get("env"));
  const cwd = absolutePath("cwd", flagValue(parsed, "cwd"));
  const cmd = shellQuote(parsed.guestArgv);
  const vm = await attachTarget(parsed.positionals[0]!);

  if (hasFlag(parsed, "tty")) {
    return runPtySession(vm, cmd, { env, cwd });
  }

  const abort = new AbortController();
  let status: number | undefined;
  const stop = (code: number) => {
    status ??= code;
    abort.abort();
  };
  const onSigint = () => {
    // A second Ctrl-C while the first is being handled: leave at once.
    if (status !== undefined) process.exit(EXIT_INTERRUPTED);
    stop(EXIT_INTERRUPTED);
  };
  const onSigterm = () => stop(128 + 15);
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigterm);
  try {
    const result = await vm.execRaw(cmd, {
      onStdout: sink(process.stdout, () => stop(EXIT_BROKEN_PIPE)),
      onStderr: sink(process.stderr, () => {}),
      // A terminal on stdin means nobody is piping data in: give the command no stdin.
      ...(process.stdin.isTTY ? {} : { stdin: process.stdin }),
      ...(Object.keys(env).length > 0 ? { env } : {}),
      ...(cwd !== undefined ? { cwd } : {}),
      execTimeoutMs: null,
      signal: abort.signal,
    });
    return status ?? result.exitCode;
  } catch (e) {
    if (status !== undefined) return status;
    throw e;
  } finally {
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigterm);
    if (!process.stdin.isTTY) process.stdin.pause();
  }
}
