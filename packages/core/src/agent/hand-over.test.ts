/**
 * The first ping after a restore (docs/vmstate.md): a stream the guest reset
 * on its side only goes silent; the hand-over gives it up after the attempt's
 * limit and goes on with a new stream.
 */
import { afterEach, describe, expect, it } from "vitest";
import { PhaseTimer } from "../log/events.js";
import { FIRST_PING_ATTEMPT_MS, handOverGuest } from "./hand-over.js";
import { FakeAgent } from "./testing/fake-agent.js";

let agent: FakeAgent | undefined;
afterEach(async () => {
  await agent?.close();
  agent = undefined;
});

describe("handOverGuest", () => {
  it("a silent first stream is abandoned after the attempt limit; the next one pings and thaws", async () => {
    let pings = 0;
    agent = await FakeAgent.start({
      behaviour: (s) => {
        if (s.request.op === "ping") {
          // The first ping is swallowed: accepted by nobody, never answered, never closed.
          if (++pings === 1) return;
          s.accept({ version: 1 });
          return s.exit(0);
        }
        if (s.request.op === "thaw") return s.exit(0, undefined, { clockStepNs: "5", guestUs: { thaw: 1200 } });
      },
    });
    const phases = new PhaseTimer("restore");
    const t0 = Date.now();
    const reply = await handOverGuest(agent.udsPath, phases);
    const took = Date.now() - t0;
    expect(pings).toBe(2);
    expect(took).toBeGreaterThanOrEqual(FIRST_PING_ATTEMPT_MS - 50);
    expect(took).toBeLessThan(FIRST_PING_ATTEMPT_MS + 5_000);
    expect(reply).toEqual({ clockStepNs: 5n, guestSteps: new Map([["thaw", 1.2]]) });
    const recorded = phases.event().phases;
    expect(recorded.get("handover.ping")!).toBeGreaterThanOrEqual(FIRST_PING_ATTEMPT_MS - 50);
    expect(recorded.get("handover.ping.rtt")!).toBeLessThan(1000);
    expect(recorded.get("handover.thaw.guest.thaw")).toBe(1.2);
  }, 20_000);
});
