import { spawnSync } from "node:child_process";

export interface ToolFailure {
  command: string;
  status: number | null;
  stderr: string;
}

/** Runs a host tool synchronously; returns a failure record instead of throwing. */
export function runTool(file: string, args: readonly string[], opts: { cwd?: string } = {}): ToolFailure | undefined {
  const r = spawnSync(file, args, { cwd: opts.cwd, stdio: ["ignore", "ignore", "pipe"], maxBuffer: 16 * 1024 * 1024 });
  if (r.error || r.status !== 0) {
    const stderr = (r.stderr?.toString() ?? "").trim().split("\n").slice(-8).join("\n");
    return { command: [file, ...args].join(" "), status: r.status, stderr: r.error ? String(r.error) : stderr };
  }
  return undefined;
}
