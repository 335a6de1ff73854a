/**
 * Host side of the VMM's vsock bridge (docs/agent-protocol.md §1): connect to
 * the Unix socket, send `CONNECT <port>\n`, wait for `OK <n>\n`.
 */
import net from "node:net";
import { ErrorCode, ExecError, type StasisError } from "../errors/index.js";
import { abortError, sleep } from "./abort.js";

/** The guest agent's vsock port. */
export const AGENT_PORT = 1978;
/** Longest `OK <n>\n` reply we accept, newline included. */
export const MAX_OK_LINE_BYTES = 64;

export interface ConnectAgentOptions {
  /** Guest vsock port; default AGENT_PORT. */
  port?: number;
  /** Total time for all attempts (a single attempt when `retry` is false). */
  timeoutMs: number;
  /** Pause between attempts. */
  retryMs: number;
  /** Retry "not listening yet" failures until `timeoutMs` runs out. */
  retry: boolean;
  signal?: AbortSignal;
  /** Builds the caller's *_AGENT_UNAVAILABLE error. */
  unavailable: (message: string, cause: unknown) => StasisError;
}

export interface AgentSocket {
  /** Connected and paused; everything after the OK line is in `head`. */
  socket: net.Socket;
  /** Bytes that arrived after the OK line (the start of the frame stream). */
  head: Buffer;
}

/** "Not listening yet": socket file missing, refused, closed before OK, attempt timed out. */
class NotReady extends Error {}

function attempt(udsPath: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<AgentSocket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: udsPath });
    // Errors after the hand-over still end in 'close', which the session handles.
    socket.on("error", () => {});
    let line: Buffer = Buffer.alloc(0);
    let settled = false;

    const finish = (err: Error | undefined, head?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.off("connect", onConnect).off("data", onData).off("error", onError).off("close", onClose);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve({ socket, head: head! });
      }
    };
    const onConnect = () => socket.write(`CONNECT ${port}\n`);
    const onData = (chunk: Buffer) => {
      line = line.length === 0 ? chunk : Buffer.concat([line, chunk]);
      const nl = line.indexOf(0x0a);
      if (nl === -1 || nl + 1 > MAX_OK_LINE_BYTES) {
        if (nl !== -1 || line.length >= MAX_OK_LINE_BYTES) {
          finish(
            new ExecError(
              ErrorCode.EXEC_PROTOCOL,
              `the vsock bridge at ${udsPath} did not answer with an "OK <port>" line within ${MAX_OK_LINE_BYTES} bytes`,
            ),
          );
        }
        return;
      }
      const text = line.subarray(0, nl).toString("latin1");
      if (!/^OK [0-9]{1,10}$/.test(text)) {
        finish(
          new ExecError(
            ErrorCode.EXEC_PROTOCOL,
            `the vsock bridge at ${udsPath} answered ${JSON.stringify(text)} instead of "OK <port>"`,
          ),
        );
        return;
      }
      socket.pause();
      finish(undefined, line.subarray(nl + 1));
    };
    const onError = (err: Error) => finish(new NotReady(err.message, { cause: err }));
    const onClose = () => finish(new NotReady("the bridge closed the connection before OK (nothing listening yet)"));
    const onAbort = () => finish(abortError(signal!));
    const timer = setTimeout(() => finish(new NotReady(`no OK within ${timeoutMs} ms`)), Math.max(1, timeoutMs));

    socket.on("connect", onConnect).on("data", onData).on("error", onError).on("close", onClose);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Opens one stream to the guest agent. "Not listening yet" failures are
 * retried every `retryMs` until `timeoutMs` has passed (when `retry`), then
 * reported with the caller's unavailable error; a malformed bridge reply is
 * ExecError EXEC_PROTOCOL at once; an abort rejects with an AbortError.
 */
export async function connectAgent(udsPath: string, opts: ConnectAgentOptions): Promise<AgentSocket> {
  const port = opts.port ?? AGENT_PORT;
  const signal = opts.signal;
  if (signal?.aborted) throw abortError(signal);
  const start = Date.now();
  const deadline = start + opts.timeoutMs;
  let attempts = 0;
  let last: NotReady | undefined;
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0 && attempts > 0) break;
    attempts++;
    try {
      return await attempt(udsPath, port, Math.max(remaining, 1), signal);
    } catch (err) {
      if (!(err instanceof NotReady)) throw err;
      last = err;
    }
    if (!opts.retry) break;
    const wait = Math.min(opts.retryMs, deadline - Date.now());
    if (wait <= 0) break;
    await sleep(wait, signal);
  }
  const waited = Date.now() - start;
  const why = last?.message ?? "no attempt";
  throw opts.unavailable(
    opts.retry
      ? `the guest agent (vsock port ${port} via ${udsPath}) was not reachable within ${opts.timeoutMs} ms (${attempts} attempts over ${waited} ms; last: ${why})`
      : `the guest agent (vsock port ${port} via ${udsPath}) is not reachable: ${why}`,
    last?.cause ?? last,
  );
}
