import type { SnapshotResult } from "@stasis/runtime";
import { attachTarget, printJson } from "../lib/io.js";
import { describeVm } from "../lib/describe.js";
import { hasFlag, type ParsedCommand } from "../parse/parser.js";

/** cli.md §3.5 `--json`: stable fields only. */
export function snapshotJson(r: SnapshotResult): Record<string, unknown> {
  if (r.dryRun) {
    return {
      dryRun: true,
      pid: r.sourcePid,
      name: r.sourceName ?? null,
      engine: r.engine,
      snapDir: r.snapDir,
      destructive: r.destructive,
    };
  }
  return {
    engine: r.engine,
    snapDir: r.snapDir,
    ...(r.imgDir !== undefined ? { imgDir: r.imgDir } : {}),
    ...(r.vmstatePath !== undefined ? { vmstatePath: r.vmstatePath } : {}),
    elapsedMs: r.elapsedMs,
  };
}

export function snapshotText(r: SnapshotResult): string {
  const vm = describeVm({ pid: r.sourcePid, name: r.sourceName });
  if (r.dryRun) {
    return `would snapshot ${vm} into ${r.snapDir} with the ${r.engine} engine; the VM would ${r.destructive ? "stop" : "keep running"}\n`;
  }
  return `snapshot of ${vm} written to ${r.snapDir} (${r.engine}, ${r.elapsedMs} ms); the VM ${r.destructive ? "has stopped" : "keeps running"}\n`;
}

/** `stasis snapshot <target> <out-dir> [--keep-alive] [--dry-run] [--json]`. */
export async function snapshotCommand(parsed: ParsedCommand): Promise<number> {
  const [target, outDir] = parsed.positionals as [string, string];
  const keepAlive = hasFlag(parsed, "keep-alive");
  const vm = await attachTarget(target);
  const r = await vm.snapshot({ outDir, leaveRunning: keepAlive, tcpClose: keepAlive, dryRun: hasFlag(parsed, "dry-run") });
  if (hasFlag(parsed, "json")) printJson(snapshotJson(r));
  else process.stdout.write(snapshotText(r));
  return 0;
}
