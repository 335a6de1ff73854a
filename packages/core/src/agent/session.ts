/**
 * One agent session on a connected bridge socket: sends the request and any
 * input, dispatches the agent's frames, and settles once with the exit frame
 * or an error. Every operation in this folder is built on it.
 */
import type { Socket } from "node:net";
import type { Readable, Writable } from "node:stream";
import { ErrorCode, ExecError, type StasisError } from "../errors/index.js";
import { abortError } from "./abort.js";
import type { AgentSocket } from "./bridge.js";
import { guestErrorName, guestText } from "../util/guest-text.js";
import {
  AGENT_FRAME_TYPES,
  FrameDecoder,
  MAX_FRAME_PAYLOAD,
  frameHeader,
  parseJsonPayload,
  payloadChunks,
  type Frame,
  type HostFrameType,
} from "./frames.js";

/** What the agent's `X` frame said. */
export interface AgentExit {
  code: number;
  /** The signal that ended the command, when one did. */
  signal?: number;
  /** The whole X object (e.g. `accepted` for secrets). */
  info: Record<string, unknown>;
}

/** A well-formed `F` frame. */
export interface AgentFailure {
  error: string;
  message: string;
}

export interface SessionOptions {
  /** The encoded `R` frame (see encodeRequest). */
  request: Buffer;
  /** Sent as `I` frames after the request, then an empty `I` (end of input). */
  input?: Readable | Buffer | string;
  /** The op answers `A` before any output or `X` (exec, read). */
  expectAccept: boolean;
  onAccept?: (info: Record<string, unknown>) => void;
  /** Synchronous per-frame output callback (`O` / `E`). A throw fails the session. */
  onOutput?: (channel: "O" | "E", payload: Buffer) => void;
  /** Output sink honouring backpressure: the socket pauses while it is full. Gets `O` (and `E` when `sinkStderr`). */
  sink?: Writable;
  sinkStderr?: boolean;
  /** Wall-clock cap from the moment the request is sent; null / Infinity = none. */
  timeoutMs?: number | null;
  timeoutError?: () => StasisError;
  signal?: AbortSignal;
  /** For a busy agent (`F EBUSY`). */
  unavailable: (message: string, cause?: unknown) => StasisError;
  /** Turns a well-formed `F` into the caller's error. */
  failure: (f: AgentFailure) => Error;
  /** For messages, e.g. `exec "ls /"`. */
  what: string;
}

function protocol(message: string, cause?: unknown): ExecError {
  return new ExecError(ErrorCode.EXEC_PROTOCOL, message, cause === undefined ? {} : { cause });
}

/** Encodes a request as an `R` frame; a request over the frame limit is `tooLarge`. */
export function encodeRequest(request: Record<string, unknown>, tooLarge: (bytes: number) => Error): Buffer {
  const body = Buffer.from(JSON.stringify(request), "utf8");
  if (body.length > MAX_FRAME_PAYLOAD) throw tooLarge(body.length);
  return Buffer.concat([frameHeader("R", body.length), body]);
}

export function requestTooLarge(what: string): (bytes: number) => ExecError {
  return (bytes) =>
    new ExecError(
      ErrorCode.EXEC_PROTOCOL,
      `the ${what} request is ${bytes} bytes; an agent request is at most ${MAX_FRAME_PAYLOAD} bytes (pass large data as stdin)`,
    );
}

function parseExit(payload: Buffer): AgentExit {
  const info = parseJsonPayload("X", payload);
  const { code, signal } = info;
  if (typeof code !== "number" || !Number.isInteger(code) || code < 0) throw protocol("the exit frame has no valid code");
  if (signal !== undefined && (typeof signal !== "number" || !Number.isInteger(signal) || signal <= 0)) {
    throw protocol("the exit frame has an invalid signal");
  }
  return signal === undefined ? { code, info } : { code, signal, info };
}

/** The guest's words end up in host error messages: made safe to print here, once. */
function parseFailure(payload: Buffer): AgentFailure {
  const obj = parseJsonPayload("F", payload);
  if (typeof obj.error !== "string") throw protocol("the failure frame has no error name");
  const error = guestErrorName(obj.error);
  return { error, message: typeof obj.message === "string" ? guestText(obj.message) : error };
}

export class AgentSession {
  /** Settles once: the exit frame, or the first error. */
  readonly done: Promise<AgentExit>;
  private readonly socket: Socket;
  private readonly decoder: FrameDecoder;
  private settled = false;
  private accepted = false;
  private timer: NodeJS.Timeout | undefined;
  private socketError: Error | undefined;
  private resolve!: (exit: AgentExit) => void;
  private reject!: (err: unknown) => void;
  private detachInput: (() => void) | undefined;
  private sinkDetached = false;
  private readonly onAbort = () => this.fail(abortError(this.opts.signal!));
  private readonly onSinkDrain = () => {
    if (!this.settled) this.socket.resume();
  };

  constructor(
    conn: AgentSocket,
    private readonly opts: SessionOptions,
  ) {
    this.socket = conn.socket;
    this.done = new Promise<AgentExit>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.decoder = new FrameDecoder(AGENT_FRAME_TYPES, (f) => this.onFrame(f));

    const { socket } = this;
    socket.on("error", (err) => (this.socketError ??= err));
    socket.on("close", () =>
      this.fail(protocol(`the agent closed the connection before ${opts.what} finished (no exit frame)`, this.socketError)),
    );
    socket.on("data", (chunk: Buffer) => this.push(chunk));

    if (opts.signal) {
      if (opts.signal.aborted) {
        this.fail(abortError(opts.signal));
        return;
      }
      opts.signal.addEventListener("abort", this.onAbort, { once: true });
    }
    if (opts.timeoutMs !== undefined && opts.timeoutMs !== null && Number.isFinite(opts.timeoutMs)) {
      this.timer = setTimeout(() => this.fail(opts.timeoutError!()), Math.max(0, opts.timeoutMs));
    }
    socket.write(opts.request);
    if (opts.input !== undefined) this.startInput(opts.input);
    if (conn.head.length > 0) this.push(conn.head);
    if (!this.settled) socket.resume();
  }

  get isSettled(): boolean {
    return this.settled;
  }

  /** Sends one frame (payload ≤ 64 KiB). Returns false when the socket is full. */
  send(type: HostFrameType, payload: Buffer = Buffer.alloc(0)): boolean {
    if (this.settled || this.socket.destroyed) return true;
    this.socket.cork();
    this.socket.write(frameHeader(type, payload.length));
    if (payload.length > 0) this.socket.write(payload);
    this.socket.uncork();
    return !this.socket.writableNeedDrain;
  }

  /** Sends `data` as `I` frames (never an empty one). Returns false when the socket is full. */
  sendInput(data: Buffer): boolean {
    let ok = true;
    for (const piece of payloadChunks(data)) ok = this.send("I", piece) && ok;
    return ok;
  }

  /** Stops writing to `sink` (it went away); later output is dropped and reading resumes. */
  detachSink(): void {
    this.sinkDetached = true;
    this.opts.sink?.off("drain", this.onSinkDrain);
    if (!this.settled) this.socket.resume();
  }

  /** Fails the session (closing the connection, so the guest command is killed). */
  fail(err: unknown): void {
    this.settle(err, undefined);
  }

  /** Settles with `exit` and closes the connection. */
  finish(exit: AgentExit): void {
    this.settle(undefined, exit);
  }

  private settle(err: unknown, exit: AgentExit | undefined): void {
    if (this.settled) return;
    this.settled = true;
    if (this.timer) clearTimeout(this.timer);
    this.opts.signal?.removeEventListener("abort", this.onAbort);
    this.opts.sink?.off("drain", this.onSinkDrain);
    this.decoder.stop();
    this.detachInput?.();
    this.socket.destroy();
    if (exit) this.resolve(exit);
    else this.reject(err);
  }

  private push(chunk: Buffer): void {
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.fail(err);
    }
  }

  private onFrame(frame: Frame): void {
    const { opts } = this;
    switch (frame.type) {
      case "A":
        if (!opts.expectAccept || this.accepted) throw protocol(`unexpected accept frame during ${opts.what}`);
        this.accepted = true;
        opts.onAccept?.(parseJsonPayload("A", frame.payload));
        return;
      case "O":
      case "E":
        if (opts.expectAccept && !this.accepted) throw protocol(`output before the accept frame during ${opts.what}`);
        this.output(frame.type, frame.payload);
        return;
      case "X": {
        if (opts.expectAccept && !this.accepted) throw protocol(`exit frame before the accept frame during ${opts.what}`);
        this.finish(parseExit(frame.payload));
        return;
      }
      case "F": {
        if (this.accepted) throw protocol(`failure frame after the command started (${opts.what})`);
        const f = parseFailure(frame.payload);
        if (f.error === "EBUSY") {
          this.fail(opts.unavailable(`the guest agent is busy (too many sessions): ${f.message}`));
        } else {
          this.fail(opts.failure(f));
        }
        return;
      }
      default:
        throw protocol(`unexpected frame '${frame.type}' from the agent`);
    }
  }

  private output(type: "O" | "E", payload: Buffer): void {
    const { opts } = this;
    if (opts.onOutput) {
      try {
        opts.onOutput(type, payload);
      } catch (err) {
        this.fail(err);
        return;
      }
    }
    const sink = this.sinkDetached ? undefined : opts.sink;
    if (sink && (type === "O" || opts.sinkStderr) && payload.length > 0) {
      if (!sink.write(payload) && !this.settled) {
        this.socket.pause();
        sink.off("drain", this.onSinkDrain);
        sink.once("drain", this.onSinkDrain);
      }
    }
  }

  private startInput(input: Readable | Buffer | string): void {
    if (typeof input === "string" || Buffer.isBuffer(input)) {
      const data = typeof input === "string" ? Buffer.from(input, "utf8") : input;
      this.sendInput(data);
      this.send("I");
      return;
    }
    const stream = input;
    const wasFlowing = stream.readableFlowing === true;
    let waitingForDrain = false;
    const onDrain = () => {
      waitingForDrain = false;
      if (!this.settled) stream.resume();
    };
    const onData = (chunk: Buffer | Uint8Array | string) => {
      const data =
        typeof chunk === "string"
          ? Buffer.from(chunk, "utf8")
          : Buffer.isBuffer(chunk)
            ? chunk
            : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (data.length === 0 || this.settled) return;
      if (!this.sendInput(data) && !waitingForDrain) {
        waitingForDrain = true;
        stream.pause();
        this.socket.once("drain", onDrain);
      }
    };
    const onEnd = () => {
      this.send("I");
      detach();
    };
    const onError = (err: Error) => this.fail(err);
    const detach = () => {
      stream.off("data", onData).off("end", onEnd).off("error", onError);
      this.socket.off("drain", onDrain);
      this.detachInput = undefined;
      if (!wasFlowing && !stream.readableEnded) stream.pause();
    };
    this.detachInput = detach;
    stream.on("data", onData).on("end", onEnd).on("error", onError);
    if (stream.readableEnded) onEnd();
    else stream.resume();
  }
}
