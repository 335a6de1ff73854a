import { boot, resolveBaseRootfs, type VmHandle } from "@stasis/runtime";
import { integer, keyValues, type ParsedCommand } from "../parse/parser.js";

/** `stasis boot [image] [flags] -- <cmd…>`: runs in the foreground, returns the guest status. */
export async function bootCommand(parsed: ParsedCommand): Promise<number> {
  const { flags, positionals, guestArgv } = parsed;
  const image = positionals[0] ?? resolveBaseRootfs();
  const vm: VmHandle = await boot({
    image,
    cmd: guestArgv.length > 0 ? guestArgv : undefined,
    env: keyValues("env", flags.get("env")),
    guestCwd: flags.get("cwd")?.[0],
    memory: integer("memory", flags.get("memory")?.[0]),
    cpus: integer("cpus", flags.get("cpus")?.[0]),
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
