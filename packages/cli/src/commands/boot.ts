import { ErrorCode, ParseError, boot, findVm, resolveBaseRootfs, type VmHandle } from "@stasis/runtime";
import { flagValue, hasFlag, integer, keyValues, vmName, type ParsedCommand } from "../parse/parser.js";
import { describeVm } from "../lib/describe.js";
import { printJson } from "../lib/io.js";

/**
 * `stasis boot [image] [flags] -- <cmd…>`: in the foreground, returns the
 * guest status; with --detach, returns 0 once the VM is up and leaves it running.
 */
export async function bootCommand(parsed: ParsedCommand): Promise<number> {
  const { flags, positionals, guestArgv } = parsed;
  const name = vmName("name", flagValue(parsed, "name"));
  const detached = hasFlag(parsed, "detach");
  const json = hasFlag(parsed, "json");
  if (json && !detached) {
    throw new ParseError(ErrorCode.PARSE_FLAG_MALFORMED, "--json needs --detach (a foreground boot prints the guest's own output)");
  }
  const env = keyValues("env", flags.get("env"));
  const guestCwd = flagValue(parsed, "cwd");
  const memory = integer("memory", flagValue(parsed, "memory"));
  const cpus = integer("cpus", flagValue(parsed, "cpus"));
  const image = positionals[0] ?? resolveBaseRootfs();
  const cmd = guestArgv.length > 0 ? guestArgv : undefined;

  if (detached) {
    // The default timeout bounds the wait for readiness (it fails rather than hang).
    const vm = await boot({ image, cmd, env, guestCwd, memory, cpus, name, detached: true });
    const entry = findVm({ pid: vm.pid });
    const identity = {
      pid: vm.pid,
      name: entry.name ?? null,
      socketPath: entry.socketPath,
      bootLogPath: entry.bootLogPath ?? null,
    };
    await vm.detach();
    if (json) printJson(identity);
    else {
      process.stdout.write(`booted ${describeVm({ pid: vm.pid, name: identity.name ?? undefined })}, detached\n`);
      if (identity.bootLogPath) process.stderr.write(`boot log: ${identity.bootLogPath}\n`);
    }
    return 0;
  }

  const vm: VmHandle = await boot({
    image,
    cmd,
    env,
    guestCwd,
    memory,
    cpus,
    name,
    timeoutMs: null,
    onStdout: (chunk) => writeOut(process.stdout, chunk),
    onStderr: (chunk) => writeOut(process.stderr, chunk),
  });
  const stopOnSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\nstasis: ${signal}: stopping the VM\n`);
    void vm.stop();
  };
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  try {
    const { code } = await vm.wait();
    return code;
  } finally {
    process.off("SIGINT", stopOnSignal);
    process.off("SIGTERM", stopOnSignal);
  }
}

function writeOut(stream: NodeJS.WriteStream, chunk: Buffer): void {
  if (!stream.destroyed) stream.write(chunk);
}
