/**
 * `VsockFiles` (api.md §3.4): directory trees in and out of the guest as a tar
 * stream through an `exec` of `tar`, with the host's `tar` on the other end.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { ErrorCode, ExecError, FilesError } from "../errors/index.js";
import { TailBuffer } from "../util/tail-buffer.js";
import { connectAgent } from "./bridge.js";
import { describeCmd, execUnavailable, startFailure } from "./exec.js";
import { AgentSession, encodeRequest, requestTooLarge } from "./session.js";
import { shellQuote } from "./write-file.js";

export interface VsockFilesOptions {
  /** Time spent retrying the connect (default 5000). */
  timeoutMs?: number;
  /** Pause between connect attempts (default 250). */
  retryMs?: number;
  /** Tar exclude patterns (each passed as `--exclude=<pattern>` to the host's tar). */
  excludes?: string[];
}

export const DEFAULT_FILES_TIMEOUT_MS = 5_000;
export const DEFAULT_FILES_RETRY_MS = 250;
const TAIL_BYTES = 4096;

function filesUnavailable(message: string, cause?: unknown): FilesError {
  return new FilesError(ErrorCode.FILES_AGENT_UNAVAILABLE, message, { retryable: true, cause });
}

interface HostTar {
  child: ChildProcess;
  /** Resolves with the exit status and the stderr tail (never rejects). */
  done: Promise<{ status: number | null; stderr: string; error?: Error }>;
}

function spawnHostTar(args: string[], stdio: ["ignore", "pipe", "pipe"] | ["pipe", "ignore", "pipe"]): HostTar {
  const child = spawn("tar", args, { stdio });
  const tail = new TailBuffer(TAIL_BYTES);
  child.stderr!.on("data", (c: Buffer) => tail.push(c));
  child.stdin?.on("error", () => {});
  const done = new Promise<{ status: number | null; stderr: string; error?: Error }>((resolve) => {
    let spawnError: Error | undefined;
    child.once("error", (err) => {
      spawnError = err;
      resolve({ status: null, stderr: "", error: err });
    });
    child.once("close", (status) => {
      if (!spawnError) resolve({ status, stderr: tail.toString().trim() });
    });
  });
  return { child, done };
}

function hostTarFailed(args: string[], r: { status: number | null; stderr: string; error?: Error }): ExecError {
  const how = r.error ? `could not run: ${r.error.message}` : `exited with status ${r.status}`;
  return new ExecError(
    ErrorCode.EXEC_NONZERO_EXIT,
    `host tar ${how} (tar ${args.join(" ")})${r.stderr ? `:\n${r.stderr}` : ""}`,
    r.error ? { cause: r.error } : {},
  );
}

function guestTarFailed(cmd: string, code: number, stderr: string): ExecError {
  return new ExecError(
    ErrorCode.EXEC_NONZERO_EXIT,
    `guest command ${describeCmd(cmd)} exited with status ${code}${stderr ? `:\n${stderr}` : ""}`,
  );
}

function excludeArgs(opts: VsockFilesOptions): string[] {
  return (opts.excludes ?? []).map((p) => `--exclude=${p}`);
}

async function connect(udsPath: string, opts: VsockFilesOptions) {
  return connectAgent(udsPath, {
    timeoutMs: opts.timeoutMs ?? DEFAULT_FILES_TIMEOUT_MS,
    retryMs: opts.retryMs ?? DEFAULT_FILES_RETRY_MS,
    retry: true,
    unavailable: filesUnavailable,
  });
}

/** Copies the tree under `hostDir` into `guestPath` (created if missing; existing files overwritten). */
async function push(udsPath: string, hostDir: string, guestPath: string, opts: VsockFilesOptions = {}): Promise<void> {
  const st = await stat(hostDir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new FilesError(ErrorCode.FILES_HOST_DIR_NOT_FOUND, `host directory ${hostDir} does not exist or is not a directory`);
  }
  const q = shellQuote(guestPath);
  // -o: files belong to the extracting user, not to the host uids in the archive.
  const cmd = `mkdir -p ${q} && tar -xof - -C ${q}`;
  const request = encodeRequest({ op: "exec", cmd, stdin: true }, requestTooLarge("exec"));
  const conn = await connect(udsPath, opts);

  const args = [...excludeArgs(opts), "-cf", "-", "-C", path.resolve(hostDir), "."];
  const tar = spawnHostTar(args, ["ignore", "pipe", "pipe"]);
  const stderr = new TailBuffer(TAIL_BYTES);
  const what = `push to ${guestPath}`;
  const session = new AgentSession(conn, {
    request,
    input: tar.child.stdout!,
    expectAccept: true,
    onOutput: (channel, chunk) => {
      if (channel === "E") stderr.push(chunk);
    },
    timeoutMs: null,
    unavailable: filesUnavailable,
    failure: startFailure(what),
    what,
  });
  let exit;
  try {
    exit = await session.done;
  } catch (err) {
    tar.child.kill("SIGKILL");
    throw err;
  }
  const host = await tar.done;
  if (host.status !== 0) throw hostTarFailed(args, host);
  if (exit.code !== 0) throw guestTarFailed(cmd, exit.code, stderr.toString().trim());
}

/** Copies `guestPath` out into `hostDir` (created if missing): a directory's contents, or a file by its name. */
async function pull(udsPath: string, guestPath: string, hostDir: string, opts: VsockFilesOptions = {}): Promise<void> {
  const q = shellQuote(guestPath);
  const dir = shellQuote(path.posix.dirname(guestPath));
  const base = shellQuote(path.posix.basename(guestPath));
  const cmd = `if [ -d ${q} ]; then tar -cf - -C ${q} .; else tar -cf - -C ${dir} ${base}; fi`;
  const request = encodeRequest({ op: "exec", cmd }, requestTooLarge("exec"));
  await mkdir(hostDir, { recursive: true });
  const conn = await connect(udsPath, opts);

  const args = [...excludeArgs(opts), "-xof", "-", "-C", path.resolve(hostDir)];
  const tar = spawnHostTar(args, ["pipe", "ignore", "pipe"]);
  const stderr = new TailBuffer(TAIL_BYTES);
  const what = `pull from ${guestPath}`;
  const session = new AgentSession(conn, {
    request,
    expectAccept: true,
    sink: tar.child.stdin!,
    onOutput: (channel, chunk) => {
      if (channel === "E") stderr.push(chunk);
    },
    timeoutMs: null,
    unavailable: filesUnavailable,
    failure: startFailure(what),
    what,
  });
  // The host tar may finish at the archive's end marker before the exit frame
  // arrives (then drop the rest), or die mid-stream (then give up at once
  // rather than wait on a sink that never drains).
  void tar.done.then((r) => {
    if (session.isSettled) return;
    if (r.status === 0) session.detachSink();
    else session.fail(hostTarFailed(args, r));
  });
  let exit;
  try {
    exit = await session.done;
  } catch (err) {
    tar.child.kill("SIGKILL");
    throw err;
  }
  tar.child.stdin!.end();
  const host = await tar.done;
  if (exit.code !== 0) throw guestTarFailed(cmd, exit.code, stderr.toString().trim());
  if (host.status !== 0) throw hostTarFailed(args, host);
}

/** Tree copies between the host and the guest (tar over the agent). */
export const VsockFiles = { push, pull } as const;
