/** `VsockExec` (api.md §3.1–3.3): commands in the guest through the agent's `exec` op. */
import type { Readable, Writable } from "node:stream";
import { ErrorCode, ExecError } from "../errors/index.js";
import { AbortError } from "./abort.js";
import { connectAgent } from "./bridge.js";
import { encodeWinsize, toU16 } from "./frames.js";
import { AgentSession, encodeRequest, requestTooLarge, type AgentExit, type AgentFailure } from "./session.js";

export interface VsockExecOptions {
  /** Total time spent retrying the connect (default 30000). */
  connectTimeoutMs?: number;
  /** Pause between connect attempts (default 250). */
  retryMs?: number;
  /** Wall-clock cap on the command from the moment it is sent (default 300000); null / Infinity = none. */
  execTimeoutMs?: number | null;
  /** Per-chunk stdout tee. When given, `result.stdout` is "" and nothing is buffered. */
  onStdout?: (chunk: Buffer) => void;
  /** Per-chunk stderr tee. When given, `result.stderr` is "" and nothing is buffered. */
  onStderr?: (chunk: Buffer) => void;
  /** The command's stdin (default: /dev/null). A stream is sent with backpressure; its end closes stdin. */
  stdin?: Readable | Buffer | string;
  /** Merged over the guest agent's environment. */
  env?: Record<string, string>;
  /** Absolute guest working directory (default "/"). */
  cwd?: string;
  /** Aborting closes the connection (the guest kills the command) and rejects with an AbortError. */
  signal?: AbortSignal;
}

export interface VsockExecResult {
  exitCode: number;
  /** All stdout as UTF-8; always "" when `onStdout` was passed. */
  stdout: string;
  /** All stderr as UTF-8; always "" when `onStderr` was passed. */
  stderr: string;
  /** The signal number that ended the command, when one did (exitCode is then 128 + signal). */
  signal?: number;
}

export interface VsockExecPtyOptions {
  cols: number;
  rows: number;
  /** Host input; each chunk is typed into the guest terminal. */
  stdin: Readable;
  /** Receives the terminal's output (never ended by us). */
  stdout: Writable;
  /** Connect timeout for the single attempt (default 5000). */
  connectTimeoutMs?: number;
  /** TERM for the guest terminal (default "xterm-256color"). */
  term?: string;
  env?: Record<string, string>;
  cwd?: string;
}

export interface VsockExecPtyResult {
  exitCode: number;
  /** The signal that ended the command, when one did. */
  signal?: number;
}

export interface VsockExecPtyHandle {
  readonly result: Promise<VsockExecPtyResult>;
  /** Resizes the guest terminal; a size identical to the last one is dropped. */
  resize(cols: number, rows: number): void;
  /** Disconnects; the guest SIGHUPs the session. `result` then resolves with 129 (SIGHUP) unless it had settled. */
  cancel(): void;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
export const DEFAULT_RETRY_MS = 250;
export const DEFAULT_EXEC_TIMEOUT_MS = 300_000;
export const DEFAULT_PTY_CONNECT_TIMEOUT_MS = 5_000;
const SIGHUP = 1;

export function execUnavailable(message: string, cause?: unknown): ExecError {
  return new ExecError(ErrorCode.EXEC_AGENT_UNAVAILABLE, message, { retryable: true, cause });
}

/** A short quoted rendering of a command for messages. */
export function describeCmd(cmd: string): string {
  const oneLine = cmd.replace(/\s+/g, " ").trim();
  return JSON.stringify(oneLine.length > 80 ? `${oneLine.slice(0, 77)}...` : oneLine);
}

/** A well-formed `F` answer to an exec: the command could not be started (e.g. a missing cwd). */
export function startFailure(what: string): (f: AgentFailure) => ExecError {
  return (f) => new ExecError(ErrorCode.EXEC_NONZERO_EXIT, `the guest agent could not start ${what}: ${f.error}: ${f.message}`);
}

function execRequest(
  cmd: string | undefined,
  fields: { env?: Record<string, string>; cwd?: string; stdin?: boolean; pty?: object },
): Buffer {
  const req: Record<string, unknown> = { op: "exec" };
  if (cmd !== undefined) req.cmd = cmd;
  if (fields.env !== undefined) req.env = fields.env;
  if (fields.cwd !== undefined) req.cwd = fields.cwd;
  if (fields.stdin) req.stdin = true;
  if (fields.pty !== undefined) req.pty = fields.pty;
  return encodeRequest(req, requestTooLarge("exec"));
}

function timeoutError(cmd: string, ms: number): () => ExecError {
  return () =>
    new ExecError(
      ErrorCode.EXEC_AGENT_TIMEOUT,
      `${describeCmd(cmd)} did not finish within ${ms} ms (execTimeoutMs); the connection was closed, so the guest killed it`,
      { retryable: true },
    );
}

async function run(udsPath: string, cmd: string, opts: VsockExecOptions = {}): Promise<VsockExecResult> {
  const request = execRequest(cmd, { env: opts.env, cwd: opts.cwd, stdin: opts.stdin !== undefined });
  const conn = await connectAgent(udsPath, {
    timeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    retryMs: opts.retryMs ?? DEFAULT_RETRY_MS,
    retry: true,
    signal: opts.signal,
    unavailable: execUnavailable,
  });
  const { onStdout, onStderr } = opts;
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const execTimeoutMs = opts.execTimeoutMs === undefined ? DEFAULT_EXEC_TIMEOUT_MS : opts.execTimeoutMs;
  const what = `exec ${describeCmd(cmd)}`;
  const session = new AgentSession(conn, {
    request,
    input: opts.stdin,
    expectAccept: true,
    onOutput: (channel, chunk) => {
      if (channel === "O") {
        if (onStdout) onStdout(chunk);
        else stdout.push(chunk);
      } else if (onStderr) onStderr(chunk);
      else stderr.push(chunk);
    },
    timeoutMs: execTimeoutMs,
    timeoutError: timeoutError(cmd, execTimeoutMs ?? 0),
    signal: opts.signal,
    unavailable: execUnavailable,
    failure: startFailure(what),
    what,
  });
  const exit: AgentExit = await session.done;
  const result: VsockExecResult = {
    exitCode: exit.code,
    stdout: onStdout ? "" : Buffer.concat(stdout).toString("utf8"),
    stderr: onStderr ? "" : Buffer.concat(stderr).toString("utf8"),
  };
  if (exit.signal !== undefined) result.signal = exit.signal;
  return result;
}

function startPty(udsPath: string, cmd: string, opts: VsockExecPtyOptions): VsockExecPtyHandle {
  const initial = { cols: toU16(opts.cols), rows: toU16(opts.rows) };
  let last = { ...initial };
  let session: AgentSession | undefined;
  let cancelled = false;
  const connectAbort = new AbortController();
  const cancelledResult: VsockExecPtyResult = { exitCode: 128 + SIGHUP, signal: SIGHUP };

  const result = (async (): Promise<VsockExecPtyResult> => {
    const term = opts.term ?? "xterm-256color";
    const request = execRequest(cmd === "" ? undefined : cmd, {
      env: opts.env,
      cwd: opts.cwd,
      pty: { cols: initial.cols, rows: initial.rows, term },
    });
    let conn;
    try {
      conn = await connectAgent(udsPath, {
        timeoutMs: opts.connectTimeoutMs ?? DEFAULT_PTY_CONNECT_TIMEOUT_MS,
        retryMs: 0,
        retry: false,
        signal: connectAbort.signal,
        unavailable: execUnavailable,
      });
    } catch (err) {
      if (cancelled) return cancelledResult;
      throw err;
    }
    if (cancelled) {
      conn.socket.destroy();
      return cancelledResult;
    }
    const what = cmd === "" ? "the interactive shell" : `exec ${describeCmd(cmd)}`;
    session = new AgentSession(conn, {
      request,
      input: opts.stdin,
      expectAccept: true,
      sink: opts.stdout,
      sinkStderr: true,
      timeoutMs: null,
      unavailable: execUnavailable,
      failure: startFailure(what),
      what,
    });
    if (last.cols !== initial.cols || last.rows !== initial.rows) session.send("W", encodeWinsize(last.cols, last.rows));
    try {
      const exit = await session.done;
      return exit.signal === undefined ? { exitCode: exit.code } : { exitCode: exit.code, signal: exit.signal };
    } catch (err) {
      if (cancelled) return cancelledResult;
      throw err;
    }
  })();

  return {
    result,
    resize(cols: number, rows: number): void {
      const next = { cols: toU16(cols), rows: toU16(rows) };
      if (next.cols === last.cols && next.rows === last.rows) return;
      last = next;
      session?.send("W", encodeWinsize(next.cols, next.rows));
    },
    cancel(): void {
      if (cancelled) return;
      cancelled = true;
      connectAbort.abort();
      session?.fail(new AbortError("the pty session was cancelled"));
    },
  };
}

/** One-shot and pty exec against the guest agent's host socket (`udsPath`). */
export const VsockExec = {
  /** Runs `cmd` via a login shell; retries the connect while the agent comes up. Never throws on a non-zero exit. */
  run,
  /** Starts `cmd` ("" = an interactive login shell) under a guest pty; no connect retries. */
  startPty,
} as const;
