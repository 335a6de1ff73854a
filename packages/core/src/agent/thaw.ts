/**
 * The agent's `ping` and `thaw` ops (docs/agent-protocol.md). A restored
 * guest wakes with the wall clock of the moment it was frozen and the
 * entropy pool of its source; `thaw` steps the clock to the host's and
 * reseeds the RNG, so restores and forks neither live in the past nor share
 * random numbers.
 */
import { ErrorCode, SnapshotError } from "../errors/index.js";
import { connectAgent } from "./bridge.js";
import { DEFAULT_RETRY_MS, execUnavailable } from "./exec.js";
import { callAgentOp, DEFAULT_OP_TIMEOUT_MS, type AgentOpOptions } from "./op-call.js";
import { AgentSession, encodeRequest, requestTooLarge } from "./session.js";

export interface ThawRequest {
  /** Host wall clock to set, in ns since the epoch. */
  realtimeNs: bigint;
  /** Fresh entropy for the guest RNG: 16..512 bytes. */
  seed: Buffer;
  hostname?: string;
}

export interface ThawReply {
  /** How far the guest clock moved (new − old), ns. */
  clockStepNs: bigint;
  /** The guest's own timing of the op's steps, ms by step name (the agent's `guestUs`); empty when it sent none. */
  guestSteps: Map<string, number>;
}

const MAX_GUEST_STEPS = 8;

/**
 * The reply's `guestUs` as ms by step. It crosses from the guest: only
 * short lowercase names and whole, plausible microsecond counts are taken,
 * at most eight of them.
 */
export function guestStepsOf(info: Record<string, unknown>): Map<string, number> {
  const steps = new Map<string, number>();
  const raw = info.guestUs;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return steps;
  for (const [name, us] of Object.entries(raw)) {
    if (steps.size >= MAX_GUEST_STEPS) break;
    if (!/^[a-z][a-z-]{0,31}$/.test(name)) continue;
    if (typeof us !== "number" || !Number.isSafeInteger(us) || us < 0 || us > 3_600_000_000) continue;
    steps.set(name, us / 1000);
  }
  return steps;
}

/** One `ping` round trip once connected; returns its duration in ms (connecting is not counted). */
export async function pingAgent(udsPath: string, opts: AgentOpOptions = {}): Promise<number> {
  // Connect first, so the measured time is the agent's answer, not connect retries.
  const timeoutMs = opts.timeoutMs ?? DEFAULT_OP_TIMEOUT_MS;
  const conn = await connectAgent(udsPath, { timeoutMs, retryMs: opts.retryMs ?? DEFAULT_RETRY_MS, retry: true, unavailable: execUnavailable });
  const t0 = performance.now();
  await new AgentSession(conn, {
    request: encodeRequest({ op: "ping" }, requestTooLarge("ping")),
    expectAccept: true,
    timeoutMs,
    timeoutError: () => execUnavailable(`the guest agent did not answer ping within ${timeoutMs} ms`),
    unavailable: execUnavailable,
    failure: (f) => new SnapshotError(ErrorCode.SNAPSHOT_THAW_FAILED, `the guest agent refused ping: ${f.error}: ${f.message}`),
    what: "ping",
  }).done;
  return performance.now() - t0;
}

const thawRefused = (op: string, f: { error: string; message: string }) =>
  new SnapshotError(ErrorCode.SNAPSHOT_THAW_FAILED, `the guest agent refused ${op}: ${f.error}: ${f.message}`);

/** The reply's signed clock step (0 when absent or malformed). */
export function clockStepOf(info: Record<string, unknown>): bigint {
  const step = info.clockStepNs;
  return typeof step === "string" && /^-?\d+$/.test(step) ? BigInt(step) : 0n;
}

/** Sends `thaw`; rejects with SNAPSHOT_THAW_FAILED when the agent refuses it. */
export async function thawGuest(udsPath: string, req: ThawRequest, opts: AgentOpOptions = {}): Promise<ThawReply> {
  if (req.seed.length < 16 || req.seed.length > 512) throw new RangeError(`thaw seed must be 16..512 bytes, got ${req.seed.length}`);
  const request: Record<string, unknown> = { op: "thaw", realtimeNs: req.realtimeNs.toString(), seed: req.seed.toString("base64") };
  if (req.hostname !== undefined) request.hostname = req.hostname;
  const exit = await callAgentOp(udsPath, "thaw", request, opts, thawRefused);
  if (exit.code !== 0) throw new SnapshotError(ErrorCode.SNAPSHOT_THAW_FAILED, `the guest agent failed thaw (status ${exit.code})`);
  return { clockStepNs: clockStepOf(exit.info), guestSteps: guestStepsOf(exit.info) };
}
