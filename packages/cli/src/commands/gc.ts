import { runGc } from "@stasis/runtime";
import { hasFlag, type ParsedCommand } from "../parse/parser.js";
import { printJson } from "../lib/io.js";
import { gcReport } from "../lib/gc-format.js";

/** `stasis gc [--dry-run|-n] [--json]`: drops entries of VMs that are gone, with their files. */
export async function gcCommand(parsed: ParsedCommand): Promise<number> {
  const dryRun = hasFlag(parsed, "dry-run");
  const results = runGc({ dryRun });
  if (hasFlag(parsed, "json")) {
    printJson(results);
    return 0;
  }
  const { stdout, stderr } = gcReport(results, dryRun);
  process.stdout.write(stdout);
  if (stderr) process.stderr.write(stderr);
  return 0;
}
