/** The guest's step timings in thaw/start replies: untrusted input, taken only when plausible. */
import { describe, expect, it } from "vitest";
import { guestStepsOf } from "./thaw.js";

describe("guestStepsOf", () => {
  it("turns the agent's µs by step into ms", () => {
    expect([...guestStepsOf({ guestUs: { validate: 12, thaw: 1500, "machine-id": 250_000, handoff: 0 } })]).toEqual([
      ["validate", 0.012],
      ["thaw", 1.5],
      ["machine-id", 250],
      ["handoff", 0],
    ]);
  });

  it("is empty without guestUs or when it is not an object", () => {
    for (const guestUs of [undefined, null, 3, "x", [1, 2]]) expect(guestStepsOf({ guestUs }).size).toBe(0);
  });

  it("skips odd names and implausible counts, and keeps at most eight", () => {
    const steps = guestStepsOf({
      guestUs: { "Bad-Name": 1, "a.b": 1, "x\n": 1, ["y".repeat(40)]: 1, neg: -1, frac: 1.5, huge: 1e13, str: "5", ok: 7 },
    });
    expect([...steps]).toEqual([["ok", 0.007]]);
    const many = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`s${"abcdefghijklmnopqrst"[i]}`, i]));
    expect(guestStepsOf({ guestUs: many }).size).toBe(8);
  });
});
