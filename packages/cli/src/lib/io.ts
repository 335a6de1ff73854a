/** Small helpers shared by the commands that talk to a running VM. */
import { attach, parseTarget, type VmHandle } from "@stasis/runtime";
import { jsonText } from "./json.js";

/** A handle on the VM a `<target>` names (digits = pid, else name); REGISTRY_VM_NOT_FOUND when none. */
export function attachTarget(target: string): Promise<VmHandle> {
  return attach(parseTarget(target));
}

/** Writes guest output to one of our streams; calls `onBroken` once the reader has gone (EPIPE). */
export function sink(stream: NodeJS.WriteStream, onBroken: () => void): (chunk: Buffer) => void {
  let broken = false;
  const fail = () => {
    if (!broken) {
      broken = true;
      onBroken();
    }
  };
  stream.on("error", fail);
  return (chunk) => {
    if (broken || stream.destroyed || stream.writableEnded) return fail();
    stream.write(chunk);
  };
}

/** Prints one JSON document on stdout (the only thing a --json command prints there). */
export function printJson(value: unknown): void {
  process.stdout.write(jsonText(value));
}
