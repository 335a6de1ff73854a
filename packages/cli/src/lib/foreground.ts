/**
 * A VM run in the foreground (boot, restore, fork without --detach): its
 * output streams to ours, Ctrl-C stops it in order, and its guest
 * command's exit status becomes ours.
 */
import type { VmHandle } from "@stasis/runtime";

/** Stream callbacks for boot/restore/fork: guest stdout → our stdout, console → our stderr. */
export function foregroundStreams(): { onStdout: (c: Buffer) => void; onStderr: (c: Buffer) => void } {
  return { onStdout: (c) => writeOut(process.stdout, c), onStderr: (c) => writeOut(process.stderr, c) };
}

function writeOut(stream: NodeJS.WriteStream, chunk: Buffer): void {
  if (!stream.destroyed) stream.write(chunk);
}

/** Waits for the VM; SIGINT/SIGTERM stop it. Returns the guest's exit status. */
export async function runInForeground(vm: VmHandle): Promise<number> {
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
