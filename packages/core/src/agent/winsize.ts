/** `VsockWinsize` (api.md §9): the boot command's terminal size through the agent's `winsize` op. */
import type { Socket } from "node:net";
import { ErrorCode, WinsizeError } from "../errors/index.js";
import { connectAgent } from "./bridge.js";
import { encodeFrame, encodeWinsize, toU16 } from "./frames.js";
import { encodeRequest, requestTooLarge } from "./session.js";

export interface VsockWinsizeOptions {
  /** Time spent retrying the connect (default 10000). */
  timeoutMs?: number;
  /** Pause between connect attempts (default 250). */
  retryMs?: number;
}

export const DEFAULT_WINSIZE_TIMEOUT_MS = 10_000;
export const DEFAULT_WINSIZE_RETRY_MS = 250;

function unavailable(message: string, cause?: unknown): WinsizeError {
  return new WinsizeError(ErrorCode.WINSIZE_AGENT_UNAVAILABLE, message, { retryable: true, cause });
}

/**
 * One open `winsize` session. Sizes are sent as `W` frames; the agent never
 * answers, so whatever it sends (an `F` when busy) or its closing just ends
 * the session and later sends are dropped.
 */
export class VsockWinsize {
  private last: { cols: number; rows: number } | undefined;
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on("error", () => {});
    socket.on("close", () => (this.closed = true));
    // Discard anything the agent says; it only ever ends the session.
    socket.on("data", () => {});
    socket.resume();
  }

  static async connect(udsPath: string, opts: VsockWinsizeOptions = {}): Promise<VsockWinsize> {
    const request = encodeRequest({ op: "winsize" }, requestTooLarge("winsize"));
    const { socket } = await connectAgent(udsPath, {
      timeoutMs: opts.timeoutMs ?? DEFAULT_WINSIZE_TIMEOUT_MS,
      retryMs: opts.retryMs ?? DEFAULT_WINSIZE_RETRY_MS,
      retry: true,
      unavailable,
    });
    socket.write(request);
    return new VsockWinsize(socket);
  }

  /** True once closed by either side. */
  get isClosed(): boolean {
    return this.closed || this.socket.destroyed;
  }

  /** Sends the size; a size identical to the last one sent is dropped. */
  send(cols: number, rows: number): void {
    const size = { cols: toU16(cols), rows: toU16(rows) };
    if (this.isClosed) return;
    if (this.last && this.last.cols === size.cols && this.last.rows === size.rows) return;
    this.last = size;
    this.socket.write(encodeFrame("W", encodeWinsize(size.cols, size.rows)));
  }

  /** Ends the session (sizes already sent are delivered first). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end(() => this.socket.destroy());
  }
}
