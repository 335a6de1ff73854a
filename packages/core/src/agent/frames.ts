/**
 * Agent wire frames (docs/agent-protocol.md §2): `type u8, length u32 LE,
 * payload`, payload at most 64 KiB.
 */
import { ErrorCode, ExecError } from "../errors/index.js";

/** Largest payload one frame may carry. */
export const MAX_FRAME_PAYLOAD = 64 * 1024;
export const FRAME_HEADER_BYTES = 5;

/** Host → agent frame types. */
export type HostFrameType = "R" | "I" | "W" | "K";
/** Agent → host frame types. */
export type AgentFrameType = "A" | "O" | "E" | "X" | "F";
export type FrameType = HostFrameType | AgentFrameType;

export const HOST_FRAME_TYPES: ReadonlySet<FrameType> = new Set<FrameType>(["R", "I", "W", "K"]);
export const AGENT_FRAME_TYPES: ReadonlySet<FrameType> = new Set<FrameType>(["A", "O", "E", "X", "F"]);

export interface Frame {
  type: FrameType;
  /** May be a view into a received chunk: copy it if you keep it past the callback and care. */
  payload: Buffer;
}

function protocolError(message: string): ExecError {
  return new ExecError(ErrorCode.EXEC_PROTOCOL, message);
}

/** The 5-byte header of a frame with `length` payload bytes. */
export function frameHeader(type: FrameType, length: number): Buffer {
  if (length > MAX_FRAME_PAYLOAD) throw new RangeError(`frame payload of ${length} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h[0] = type.charCodeAt(0);
  h.writeUInt32LE(length, 1);
  return h;
}

/** One whole frame as a single buffer (copies the payload; use for small frames). */
export function encodeFrame(type: FrameType, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  return Buffer.concat([frameHeader(type, body.length), body]);
}

export function encodeJsonFrame(type: FrameType, value: unknown): Buffer {
  return encodeFrame(type, JSON.stringify(value));
}

/** A `W` payload: cols u16 LE, rows u16 LE. */
export function encodeWinsize(cols: number, rows: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt16LE(cols, 0);
  b.writeUInt16LE(rows, 2);
  return b;
}

/** Clamps a terminal dimension into a u16 (non-numbers become 0). */
export function toU16(n: number): number {
  if (!Number.isFinite(n)) return 0;
  return Math.max(0, Math.min(0xffff, Math.floor(n)));
}

/** Splits `data` into views of at most MAX_FRAME_PAYLOAD bytes (no copies). */
export function* payloadChunks(data: Buffer): Generator<Buffer> {
  for (let off = 0; off < data.length; off += MAX_FRAME_PAYLOAD) {
    yield data.subarray(off, Math.min(off + MAX_FRAME_PAYLOAD, data.length));
  }
}

/**
 * Incremental decoder. Feed it chunks as they arrive; it calls `onFrame` for
 * every complete frame. A payload that arrived in one chunk is passed as a
 * view of that chunk; only a payload split across chunks is copied (once).
 * An unknown type or an oversize length throws ExecError EXEC_PROTOCOL, after
 * which the decoder refuses further input.
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  /** Set while a header has been read and its payload is pending. */
  private type: FrameType | undefined;
  private length = 0;
  /** Only for a payload split across chunks. */
  private partial: Buffer | undefined;
  private partialFill = 0;
  private failed: ExecError | undefined;
  private stopped = false;

  constructor(
    private readonly accept: ReadonlySet<FrameType>,
    private readonly onFrame: (frame: Frame) => void,
  ) {}

  /** True between frames (nothing partial buffered). */
  get idle(): boolean {
    return this.headerFill === 0 && this.type === undefined;
  }

  /** Stops delivering frames (the consumer is done); later input is ignored. */
  stop(): void {
    this.stopped = true;
  }

  push(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    let off = 0;
    while (!this.stopped) {
      if (this.type === undefined) {
        if (off === chunk.length) return;
        if (this.headerFill === 0 && chunk.length - off >= FRAME_HEADER_BYTES) {
          this.begin(chunk[off]!, chunk.readUInt32LE(off + 1));
          off += FRAME_HEADER_BYTES;
        } else {
          const n = Math.min(FRAME_HEADER_BYTES - this.headerFill, chunk.length - off);
          chunk.copy(this.header, this.headerFill, off, off + n);
          this.headerFill += n;
          off += n;
          if (this.headerFill < FRAME_HEADER_BYTES) return;
          this.headerFill = 0;
          this.begin(this.header[0]!, this.header.readUInt32LE(1));
        }
      }
      if (this.partial === undefined) {
        if (chunk.length - off >= this.length) {
          const view = chunk.subarray(off, off + this.length);
          off += this.length;
          this.emit(view);
          continue;
        }
        this.partial = Buffer.allocUnsafe(this.length);
        this.partialFill = 0;
      }
      const n = Math.min(this.length - this.partialFill, chunk.length - off);
      chunk.copy(this.partial, this.partialFill, off, off + n);
      this.partialFill += n;
      off += n;
      if (this.partialFill < this.length) return;
      this.emit(this.partial);
    }
  }

  private begin(typeByte: number, length: number): void {
    const type = String.fromCharCode(typeByte) as FrameType;
    if (!this.accept.has(type)) {
      this.failed = protocolError(
        `unexpected frame type 0x${typeByte.toString(16).padStart(2, "0")} (not a stasis agent, or a corrupted stream)`,
      );
      throw this.failed;
    }
    if (length > MAX_FRAME_PAYLOAD) {
      this.failed = protocolError(`frame '${type}' announces ${length} payload bytes; the limit is ${MAX_FRAME_PAYLOAD}`);
      throw this.failed;
    }
    this.type = type;
    this.length = length;
  }

  private emit(payload: Buffer): void {
    const type = this.type!;
    this.type = undefined;
    this.partial = undefined;
    this.length = 0;
    this.onFrame({ type, payload });
  }
}

/** Parses a JSON-object payload (A, X, F, R); anything else is EXEC_PROTOCOL. */
export function parseJsonPayload(type: FrameType, payload: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString("utf8"));
  } catch (cause) {
    throw new ExecError(ErrorCode.EXEC_PROTOCOL, `frame '${type}' does not carry valid JSON`, { cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw protocolError(`frame '${type}' must carry a JSON object`);
  }
  return value as Record<string, unknown>;
}
