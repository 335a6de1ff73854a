/**
 * `vm.writeFile` (api.md §3.5) and a guest file read.
 *
 * writeFile uses the agent's binary `write` op: the bytes travel as-is in
 * `I` frames, so there is no base64 inflation (+33 %), no shell or `base64`
 * binary needed in the guest, no per-chunk command spawn, and no argument
 * length limit to stay under. The base64 shell plan of §3.5 is still
 * exported (`buildWriteFileCmd(s)`) for callers that only have a shell.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { ErrorCode, ExecError } from "../errors/index.js";
import { connectAgent } from "./bridge.js";
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_EXEC_TIMEOUT_MS, DEFAULT_RETRY_MS, execUnavailable } from "./exec.js";
import { AgentSession, encodeRequest, requestTooLarge, type AgentFailure } from "./session.js";

export interface WriteFileOptions {
  /** Permission bits applied after writing (e.g. 0o755); default: new files 0644, existing ones keep theirs. */
  mode?: number;
  /** Create missing parent directories (default true). */
  recursive?: boolean;
  /** Append instead of overwriting (default false). */
  append?: boolean;
}

/** Transport knobs for the direct (udsPath) calls. */
export interface AgentCallOptions {
  /** Total time spent retrying the connect (default 30000). */
  connectTimeoutMs?: number;
  retryMs?: number;
  /** Cap on the transfer once connected (default 300000); null / Infinity = none. Expiry → EXEC_AGENT_TIMEOUT. */
  timeoutMs?: number | null;
  signal?: AbortSignal;
}

/**
 * Base64 characters staged per command by buildWriteFileCmds: 96 KiB, so a
 * command stays well under Linux's 128 KiB per-argument limit (MAX_ARG_STRLEN;
 * the command is one argument of `sh -c`). A multiple of 4.
 */
export const WRITE_FILE_B64_CHUNK_BYTES = 96 * 1024;

function toBuffer(contents: string | Buffer): Buffer {
  return typeof contents === "string" ? Buffer.from(contents, "utf8") : contents;
}

function checkMode(mode: number | undefined): void {
  if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) {
    throw new RangeError(`mode must be an integer permission value 0..0o7777, got ${mode}`);
  }
}

/** Single-quotes `s` for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function finalSteps(guestPath: string, decode: string, opts: WriteFileOptions): string[] {
  const steps: string[] = [];
  if (opts.recursive ?? true) steps.push(`mkdir -p ${shellQuote(path.posix.dirname(guestPath))}`);
  steps.push(`${decode} ${opts.append ? ">>" : ">"} ${shellQuote(guestPath)}`);
  if (opts.mode !== undefined) steps.push(`chmod ${opts.mode.toString(8)} ${shellQuote(guestPath)}`);
  return steps;
}

/** One shell line writing `contents` to `guestPath` (mkdir -p, base64 -d into the target, chmod). */
export function buildWriteFileCmd(guestPath: string, contents: string | Buffer, opts: WriteFileOptions = {}): string {
  checkMode(opts.mode);
  const b64 = toBuffer(contents).toString("base64");
  return finalSteps(guestPath, `printf '%s' ${shellQuote(b64)} | base64 -d`, opts).join(" && ");
}

/**
 * The shell plan for `contents`: `[buildWriteFileCmd(...)]` when the base64
 * fits one chunk; otherwise chunks appended to a staging file under /tmp,
 * then one command decoding it into place and removing it (also on failure).
 */
export function buildWriteFileCmds(guestPath: string, contents: string | Buffer, opts: WriteFileOptions = {}): string[] {
  checkMode(opts.mode);
  const b64 = toBuffer(contents).toString("base64");
  if (b64.length <= WRITE_FILE_B64_CHUNK_BYTES) return [buildWriteFileCmd(guestPath, contents, opts)];
  const stage = shellQuote(`/tmp/.stasis-writefile-${randomBytes(8).toString("hex")}.b64`);
  const cmds: string[] = [];
  for (let off = 0; off < b64.length; off += WRITE_FILE_B64_CHUNK_BYTES) {
    const chunk = b64.slice(off, off + WRITE_FILE_B64_CHUNK_BYTES);
    cmds.push(`printf '%s' '${chunk}' ${off === 0 ? ">" : ">>"} ${stage}`);
  }
  const steps = finalSteps(guestPath, `base64 -d ${stage}`, opts);
  cmds.push(`${steps.join(" && ")}; s=$?; rm -f ${stage}; exit $s`);
  return cmds;
}

function guestFailure(what: string): (f: AgentFailure) => ExecError {
  return (f) => new ExecError(ErrorCode.EXEC_NONZERO_EXIT, `${what} failed in the guest: ${f.error}: ${f.message}`);
}

function transferTimeout(what: string, ms: number): () => ExecError {
  return () =>
    new ExecError(ErrorCode.EXEC_AGENT_TIMEOUT, `${what} did not finish within ${ms} ms; the connection was closed`, {
      retryable: true,
    });
}

/**
 * Writes `contents` to `guestPath` byte-exact through the agent's `write` op.
 * A guest-side failure (missing parent with recursive: false, EACCES,
 * ENOSPC, …) → ExecError EXEC_NONZERO_EXIT with the agent's message.
 */
export async function writeFile(
  udsPath: string,
  guestPath: string,
  contents: string | Buffer,
  opts: WriteFileOptions & AgentCallOptions = {},
): Promise<void> {
  checkMode(opts.mode);
  const what = `writeFile ${JSON.stringify(guestPath)}`;
  const req: Record<string, unknown> = {
    op: "write",
    path: guestPath,
    mkdirs: opts.recursive ?? true,
    append: opts.append ?? false,
  };
  if (opts.mode !== undefined) req.mode = opts.mode;
  const request = encodeRequest(req, requestTooLarge("write"));
  const conn = await connectForCall(udsPath, opts);
  const timeoutMs = opts.timeoutMs === undefined ? DEFAULT_EXEC_TIMEOUT_MS : opts.timeoutMs;
  const exit = await new AgentSession(conn, {
    request,
    input: toBuffer(contents),
    expectAccept: false,
    timeoutMs,
    timeoutError: transferTimeout(what, timeoutMs ?? 0),
    signal: opts.signal,
    unavailable: execUnavailable,
    failure: guestFailure(what),
    what,
  }).done;
  if (exit.code !== 0) throw new ExecError(ErrorCode.EXEC_NONZERO_EXIT, `${what} failed in the guest (status ${exit.code})`);
}

/** Reads a guest file through the agent's `read` op. Failure → ExecError EXEC_NONZERO_EXIT. */
/** Connects for a one-shot file call, retrying while the agent comes up. */
function connectForCall(udsPath: string, opts: AgentCallOptions): ReturnType<typeof connectAgent> {
  return connectAgent(udsPath, {
    timeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    retryMs: opts.retryMs ?? DEFAULT_RETRY_MS,
    retry: true,
    signal: opts.signal,
    unavailable: execUnavailable,
  });
}

export async function readFile(udsPath: string, guestPath: string, opts: AgentCallOptions = {}): Promise<Buffer> {
  const what = `readFile ${JSON.stringify(guestPath)}`;
  const request = encodeRequest({ op: "read", path: guestPath }, requestTooLarge("read"));
  const conn = await connectForCall(udsPath, opts);
  const chunks: Buffer[] = [];
  const timeoutMs = opts.timeoutMs === undefined ? DEFAULT_EXEC_TIMEOUT_MS : opts.timeoutMs;
  const exit = await new AgentSession(conn, {
    request,
    expectAccept: true,
    onOutput: (channel, chunk) => {
      if (channel === "O") chunks.push(chunk);
    },
    timeoutMs,
    timeoutError: transferTimeout(what, timeoutMs ?? 0),
    signal: opts.signal,
    unavailable: execUnavailable,
    failure: guestFailure(what),
    what,
  }).done;
  if (exit.code !== 0) throw new ExecError(ErrorCode.EXEC_NONZERO_EXIT, `${what} failed in the guest (status ${exit.code})`);
  return Buffer.concat(chunks);
}
