/**
 * After a restore the guest's wall clock is where it was at the freeze and
 * its RNG state is its source's. `thaw` sets the clock to the host's — sent
 * as "now + half a measured ping round trip", so it is right when the agent
 * applies it — and reseeds the RNG so siblings draw different numbers.
 */
import { randomBytes } from "node:crypto";
import { ErrorCode, isStasisError, pingAgent, thawGuest, type PhaseTimer, type ThawReply } from "@stasis/core";

/** Bytes of fresh entropy per thaw (the agent takes 16..512). */
export const THAW_SEED_BYTES = 64;

export interface ThawClock {
  /** Host wall clock, ns since the epoch. */
  realtimeNs(): bigint;
}

export const hostClock: ThawClock = {
  realtimeNs: () => BigInt(Date.now()) * 1_000_000n,
};

/** How long a restored guest gets to answer its first ping. */
export const THAW_PING_DEADLINE_MS = 30_000;

/**
 * The first ping, retried while the connection is dropped: a restored guest
 * resets every vsock stream it had, and one opened while it is still doing
 * so (the VMM holds new streams for a while, not forever) is reset too.
 */
async function firstPing(udsPath: string): Promise<number> {
  const deadline = Date.now() + THAW_PING_DEADLINE_MS;
  for (;;) {
    try {
      return await pingAgent(udsPath, { timeoutMs: Math.max(1000, deadline - Date.now()) });
    } catch (err) {
      const transient = isStasisError(err, ErrorCode.EXEC_PROTOCOL) || isStasisError(err, ErrorCode.EXEC_AGENT_UNAVAILABLE);
      if (!transient || Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function thawRestored(udsPath: string, phases: PhaseTimer, clock: ThawClock = hostClock): Promise<ThawReply> {
  const rttMs = await firstPing(udsPath);
  phases.record("thaw.ping", rttMs);
  const t0 = performance.now();
  const reply = await thawGuest(udsPath, {
    realtimeNs: clock.realtimeNs() + BigInt(Math.round((rttMs / 2) * 1e6)),
    seed: randomBytes(THAW_SEED_BYTES),
  });
  phases.record("thaw", performance.now() - t0);
  return reply;
}
