/**
 * Handing a fresh or restored guest over to the host: the first ping
 * (retried while the guest resets the vsock streams it had), then either
 * `thaw` (a restore: the guest goes on with what it ran) or `start` (a
 * boot: the guest gets its workload). The clock sent is the host's plus
 * half the measured round trip, so it is right when the agent applies it.
 */
import { randomBytes } from "node:crypto";
import { ErrorCode, isStasisError } from "../errors/index.js";
import type { PhaseTimer } from "../log/events.js";
import { startGuest, type GuestWorkload } from "./start.js";
import { pingAgent, thawGuest, type ThawReply } from "./thaw.js";

/** Bytes of fresh entropy per hand-over (the agent takes 16..512). */
export const HANDOVER_SEED_BYTES = 64;

/** How long a guest gets to answer its first ping, all attempts together. */
export const FIRST_PING_DEADLINE_MS = 60_000;
/**
 * How long `thaw` or `start` may take once sent. Well under a second
 * normally; a guest sharing the cores with cold boots took over 10 s here.
 */
export const HANDOVER_OP_TIMEOUT_MS = 60_000;
/** The first attempt's own limit; it doubles after each attempt that ran out. */
export const FIRST_PING_ATTEMPT_MS = 5_000;

export interface HostClock {
  /** Host wall clock, ns since the epoch. */
  realtimeNs(): bigint;
}

export const hostClock: HostClock = {
  realtimeNs: () => BigInt(Date.now()) * 1_000_000n,
};

/** What the guest is told besides the clock and entropy. */
export interface HandOver {
  /** A boot's workload (`start`); absent: a restore (`thaw`). */
  workload?: GuestWorkload;
  hostname?: string;
  machineId?: string;
  clock?: HostClock;
}

/**
 * A restored guest resets every vsock stream it had, and one opened while
 * it is still doing so is reset too: the VMM holds new streams back until
 * the guest is done, but not forever (docs/vmstate.md). Such a stream is
 * dropped with an error, or — when the guest reset it on its side only —
 * goes silent. Either way, retry on a new stream until the deadline; each
 * attempt has its own limit, so a silent stream costs seconds, not the
 * whole deadline.
 */
async function firstPing(udsPath: string): Promise<number> {
  const deadline = Date.now() + FIRST_PING_DEADLINE_MS;
  let attemptMs = FIRST_PING_ATTEMPT_MS;
  for (;;) {
    const limit = Math.max(1000, Math.min(attemptMs, deadline - Date.now()));
    const t0 = Date.now();
    try {
      return await pingAgent(udsPath, { timeoutMs: limit });
    } catch (err) {
      const transient = isStasisError(err, ErrorCode.EXEC_PROTOCOL) || isStasisError(err, ErrorCode.EXEC_AGENT_UNAVAILABLE);
      if (!transient || Date.now() >= deadline) throw err;
      if (Date.now() - t0 >= limit) attemptMs *= 2; // ran out, not refused: give a slow guest longer
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function handOverGuest(udsPath: string, phases: PhaseTimer, h: HandOver = {}): Promise<ThawReply> {
  // The phase is the wall time, retries included; the round trip alone is its sub-phase.
  const tPing = performance.now();
  const rttMs = await firstPing(udsPath);
  phases.record("handover.ping", performance.now() - tPing);
  phases.record("handover.ping.rtt", rttMs);
  const t0 = performance.now();
  const clock = h.clock ?? hostClock;
  const thaw = {
    realtimeNs: clock.realtimeNs() + BigInt(Math.round((rttMs / 2) * 1e6)),
    seed: randomBytes(HANDOVER_SEED_BYTES),
    ...(h.hostname !== undefined ? { hostname: h.hostname } : {}),
  };
  const op = { timeoutMs: HANDOVER_OP_TIMEOUT_MS };
  const reply = h.workload
    ? await startGuest(udsPath, { ...thaw, workload: h.workload, ...(h.machineId !== undefined ? { machineId: h.machineId } : {}) }, op)
    : await thawGuest(udsPath, thaw, op);
  const phase = h.workload ? "handover.start" : "handover.thaw";
  phases.record(phase, performance.now() - t0);
  for (const [step, ms] of reply.guestSteps) phases.record(`${phase}.guest.${step}`, ms);
  return reply;
}
