import readline from "node:readline";
import type { ParsedCommand } from "../parse/parser.js";
import { attachTarget, sink } from "../lib/io.js";

const EXIT_INTERRUPTED = 128 + 2;
const EXIT_BROKEN_PIPE = 128 + 13;

/**
 * `stasis repl <target>`: every non-empty stdin line is one independent
 * command in the VM (no shared cwd or env). Exits with the last one's status.
 */
export async function replCommand(parsed: ParsedCommand): Promise<number> {
  const vm = await attachTarget(parsed.positionals[0]!);
  const interactive = process.stdin.isTTY === true;
  const rl = readline.createInterface({
    input: process.stdin,
    crlfDelay: Infinity,
    ...(interactive ? { output: process.stderr, terminal: true, prompt: "stasis> " } : { terminal: false }),
  });
  let current: AbortController | undefined;
  let status = 0;
  let ended: number | undefined;
  const interrupt = () => {
    if (current) {
      current.abort();
    } else {
      ended ??= EXIT_INTERRUPTED;
      rl.close();
    }
  };
  rl.on("SIGINT", interrupt);
  process.on("SIGINT", interrupt);
  const onStdout = sink(process.stdout, () => {
    ended ??= EXIT_BROKEN_PIPE;
    current?.abort();
    rl.close();
  });
  const onStderr = sink(process.stderr, () => {});
  try {
    if (interactive) rl.prompt();
    for await (const line of rl) {
      if (ended !== undefined) break;
      if (line.trim() !== "") {
        const abort = new AbortController();
        current = abort;
        try {
          const result = await vm.execRaw(line, { onStdout, onStderr, execTimeoutMs: null, signal: abort.signal });
          status = result.exitCode;
        } catch (e) {
          if (!abort.signal.aborted) throw e;
          status = EXIT_INTERRUPTED;
          if (interactive) process.stderr.write("\n");
        } finally {
          current = undefined;
        }
      }
      if (interactive && ended === undefined) rl.prompt();
    }
    return ended ?? status;
  } finally {
    process.off("SIGINT", interrupt);
    rl.close();
  }
}
