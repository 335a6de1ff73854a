import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import {
  AGENT_FRAME_TYPES,
  FrameDecoder,
  MAX_FRAME_PAYLOAD,
  encodeFrame,
  encodeWinsize,
  frameHeader,
  payloadChunks,
  type Frame,
} from "./frames.js";

function decodeAll(chunks: Buffer[]): Frame[] {
  const frames: Frame[] = [];
  const d = new FrameDecoder(AGENT_FRAME_TYPES, (f) => frames.push({ type: f.type, payload: Buffer.from(f.payload) }));
  for (const c of chunks) d.push(c);
  return frames;
}

const digest = (f: Frame) => `${f.type}:${createHash("sha256").update(f.payload).digest("hex")}`;

describe("agent frames", () => {
  const big = Buffer.alloc(MAX_FRAME_PAYLOAD, 7);
  const stream = Buffer.concat([
    encodeFrame("A", '{"pid":1}'),
    encodeFrame("O", "hello"),
    encodeFrame("E", Buffer.alloc(0)),
    encodeFrame("O", big),
    encodeFrame("X", '{"code":0}'),
  ]);

  it("encodes type, u32 LE length and payload", () => {
    expect([...encodeFrame("O", "hi")]).toEqual([0x4f, 2, 0, 0, 0, 0x68, 0x69]);
    expect([...encodeWinsize(300, 2)]).toEqual([44, 1, 2, 0]);
    expect(() => frameHeader("O", MAX_FRAME_PAYLOAD + 1)).toThrow(RangeError);
  });

  it("decodes a stream split at any byte boundary", () => {
    const whole = decodeAll([stream]);
    expect(whole.map((f) => f.type)).toEqual(["A", "O", "E", "O", "X"]);
    expect(whole[3]!.payload.equals(big)).toBe(true);
    for (const cut of [1, 2, 4, 5, 6, 9, 20, 30, 1000, stream.length - 12, stream.length - 1]) {
      const split = decodeAll([stream.subarray(0, cut), stream.subarray(cut)]);
      expect(split.map(digest)).toEqual(whole.map(digest));
    }
    const bytes = decodeAll([...stream.subarray(0, 200)].map((b) => Buffer.from([b])));
    expect(bytes.map((f) => f.type)).toEqual(["A", "O", "E"]);
  });

  it("passes a payload that arrived in one chunk as a view, without copying", () => {
    const seen: Buffer[] = [];
    new FrameDecoder(AGENT_FRAME_TYPES, (f) => seen.push(f.payload)).push(stream);
    expect(seen[3]!.buffer).toBe(stream.buffer);
  });

  it("splits payloads into frame-sized views", () => {
    const parts = [...payloadChunks(Buffer.alloc(MAX_FRAME_PAYLOAD * 2 + 5))];
    expect(parts.map((p) => p.length)).toEqual([MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD, 5]);
    expect([...payloadChunks(Buffer.alloc(0))]).toEqual([]);
  });

  it("rejects an oversize length and an unknown type with EXEC_PROTOCOL, and stays failed", () => {
    const oversize = Buffer.from([0x4f, 0x01, 0x00, 0x01, 0x00]); // 65537
    const d = new FrameDecoder(AGENT_FRAME_TYPES, () => {});
    let err: unknown;
    try {
      d.push(oversize);
    } catch (e) {
      err = e;
    }
    expect(isStasisError(err, "EXEC_PROTOCOL")).toBe(true);
    expect(() => d.push(encodeFrame("O", "x"))).toThrow(/65537/);
    expect(() => decodeAll([Buffer.from("HTTP/1.1 200 OK\r\n")])).toThrow(expect.objectContaining({ code: "EXEC_PROTOCOL" }));
    // A host→agent type is unknown to the host side.
    expect(() => decodeAll([encodeFrame("R", "{}")])).toThrow(expect.objectContaining({ code: "EXEC_PROTOCOL" }));
  });
});
