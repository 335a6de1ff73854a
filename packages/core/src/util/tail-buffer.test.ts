import { describe, expect, it } from "vitest";
import { TailBuffer } from "./tail-buffer.js";

describe("TailBuffer (B48)", () => {
  it("keeps only the newest bytes", () => {
    const t = new TailBuffer(10);
    t.push(Buffer.from("0123456789"));
    t.push(Buffer.from("abcde"));
    expect(t.toString()).toBe("56789abcde");
    t.push(Buffer.from("this chunk is longer than the cap"));
    expect(t.toString()).toBe("an the cap");
  });
});
