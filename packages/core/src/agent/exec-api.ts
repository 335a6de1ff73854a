/** The exec surface a VmHandle exposes (api.md §2), bound to one VM's bridge socket. */
import { ErrorCode, ExecError } from "../errors/index.js";
import type { OnLog } from "../log/events.js";
import { TailBuffer } from "../util/tail-buffer.js";
import {
  VsockExec,
  describeCmd,
  type VsockExecOptions,
  type VsockExecPtyHandle,
  type VsockExecPtyOptions,
  type VsockExecResult,
} from "./exec.js";
import { writeFile, type WriteFileOptions } from "./write-file.js";

/** The EXEC_NONZERO_EXIT error `exec()` throws, with what the command produced. */
export type ExecExitError = ExecError & {
  readonly exitCode: number;
  /** As in the result: "" when `onStdout` was passed. */
  readonly stdout: string;
  readonly stderr: string;
  readonly signal?: number;
};

export interface ExecApi {
  /** Runs `cmd` in the guest; a non-zero exit throws ExecError EXEC_NONZERO_EXIT (an ExecExitError). */
  exec(cmd: string, opts?: VsockExecOptions): Promise<VsockExecResult>;
  /** As exec, but a non-zero exit is returned in `exitCode`. */
  execRaw(cmd: string, opts?: VsockExecOptions): Promise<VsockExecResult>;
  /** A pty session (api.md §3.3). */
  execPty(cmd: string, opts: VsockExecPtyOptions): VsockExecPtyHandle;
  /** Writes a guest file byte-exact (api.md §3.5). */
  writeFile(guestPath: string, contents: string | Buffer, opts?: WriteFileOptions): Promise<void>;
}

/** How much of stderr a non-zero-exit message quotes. */
const STDERR_TAIL_CHARS = 2000;

function nonZeroExit(cmd: string, r: VsockExecResult, stderrTail: string): ExecExitError {
  const how = r.signal !== undefined ? `was killed by signal ${r.signal} (status ${r.exitCode})` : `exited with status ${r.exitCode}`;
  const tail = stderrTail.trimEnd().slice(-STDERR_TAIL_CHARS);
  const err = new ExecError(ErrorCode.EXEC_NONZERO_EXIT, `${describeCmd(cmd)} ${how}${tail ? `; stderr:\n${tail}` : ""}`);
  const details: { exitCode: number; stdout: string; stderr: string; signal?: number } = {
    exitCode: r.exitCode,
    stdout: r.stdout,
    stderr: r.stderr,
  };
  if (r.signal !== undefined) details.signal = r.signal;
  return Object.assign(err, details);
}

function vsockUnavailable(): ExecError {
  return new ExecError(
    ErrorCode.EXEC_VSOCK_UNAVAILABLE,
    "this VM has no vsock bridge for the host (STASIS_VSOCK was preset by the caller, or no socket path was recorded)",
  );
}

/**
 * Binds exec/execRaw/execPty/writeFile to one VM's bridge socket. Without a
 * socket path every call fails with EXEC_VSOCK_UNAVAILABLE (execPty: its
 * `result` rejects). `onLog` receives `exec-stdout` / `exec-stderr` chunks
 * with `cmd` set, in addition to any onStdout / onStderr.
 */
export function createExecApi(udsPath: string | undefined, onLog?: OnLog): ExecApi {
  /**
   * The per-channel callback handed to VsockExec.run: tees to onLog (and a
   * stderr tail for messages) while keeping the caller's onStdout/onStderr
   * choice — a tee must not switch off buffering the caller did not.
   */
  const channel = (
    cmd: string,
    source: "exec-stdout" | "exec-stderr",
    user: ((chunk: Buffer) => void) | undefined,
    tail?: TailBuffer,
  ) => {
    if (!onLog && !tail) return { cb: user, chunks: undefined };
    const chunks: Buffer[] | undefined = user ? undefined : [];
    const cb = (chunk: Buffer) => {
      onLog?.({ source, cmd, chunk });
      tail?.push(chunk);
      if (user) user(chunk);
      else chunks!.push(chunk);
    };
    return { cb, chunks };
  };

  const run = async (cmd: string, opts: VsockExecOptions, stderrTail?: TailBuffer): Promise<VsockExecResult> => {
    if (udsPath === undefined) throw vsockUnavailable();
    const out = channel(cmd, "exec-stdout", opts.onStdout);
    const err = channel(cmd, "exec-stderr", opts.onStderr, stderrTail);
    const r = await VsockExec.run(udsPath, cmd, { ...opts, onStdout: out.cb, onStderr: err.cb });
    if (out.chunks) r.stdout = Buffer.concat(out.chunks).toString("utf8");
    if (err.chunks) r.stderr = Buffer.concat(err.chunks).toString("utf8");
    return r;
  };

  return {
    async exec(cmd, opts = {}) {
      const tail = opts.onStderr ? new TailBuffer(8 * 1024) : undefined;
      const r = await run(cmd, opts, tail);
      if (r.exitCode !== 0) throw nonZeroExit(cmd, r, tail ? tail.toString() : r.stderr);
      return r;
    },
    execRaw(cmd, opts = {}) {
      return run(cmd, opts);
    },
    execPty(cmd, opts) {
      if (udsPath === undefined) {
        const result = Promise.reject(vsockUnavailable());
        return { result, resize() {}, cancel() {} };
      }
      return VsockExec.startPty(udsPath, cmd, opts);
    },
    writeFile(guestPath, contents, opts = {}) {
      if (udsPath === undefined) return Promise.reject(vsockUnavailable());
      return writeFile(udsPath, guestPath, contents, opts);
    },
  };
}
