import { ErrorCode, ParseError, boot, resolveBaseRootfs } from "@stasis/runtime";
import { flagValue, hasFlag, integer, keyValues, vmName, type ParsedCommand } from "../parse/parser.js";
import { foregroundStreams, runInForeground } from "../lib/foreground.js";
import { reportDetached } from "../lib/identity.js";

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
  const warm = hasFlag(parsed, "cold") ? false : undefined;

  if (detached) {
    // The default timeout bounds the wait for readiness (it fails rather than hang).
    const vm = await boot({ image, cmd, env, guestCwd, memory, cpus, name, warm, detached: true });
    await reportDetached(vm, "booted", json);
    return 0;
  }
  const vm = await boot({ image, cmd, env, guestCwd, memory, cpus, name, warm, timeoutMs: null, ...foregroundStreams() });
  return runInForeground(vm);
}
