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
import { AgentSession, encodeRequest, requestTooLarge } from "./session.js";

export interface AgentOpOptions {
  /** Time for connect retries plus the answer (default 10000). */
  timeoutMs?: number;
  retryMs?: number;
}

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
}

const DEFAULT_TIMEOUT_MS = 10_000;

async function call(udsPath: string, op: string, request: Record<string, unknown>, expectAccept: boolean, opts: AgentOpOptions) {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const start = Date.now();
  const conn = await connectAgent(udsPath, { timeoutMs, retryMs: opts.retryMs ?? DEFAULT_RETRY_MS, retry: true, unavailable: execUnavailable });
  return new AgentSession(conn, {
    request: encodeRequest(request, requestTooLarge(op)),
    expectAccept,
    timeoutMs: Math.max(1, timeoutMs - (Date.now() - start)),
    timeoutError: () => execUnavailable(`the guest agent did not answer ${op} within ${timeoutMs} ms`),
    unavailable: execUnavailable,
    failure: (f) => new SnapshotError(ErrorCode.SNAPSHOT_THAW_FAILED, `the guest agent refused ${op}: ${f.error}: ${f.message}`),
    what: op,
  }).done;
}

/** One `ping` round trip once connected; returns its duration in ms (connecting is not counted). */
export async function pingAgent(udsPath: string, opts: AgentOpOptions = {}): Promise<number> {
  // Connect first, so the measured time is the agent's answer, not connect retries.
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
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

/** Sends `thaw`; rejects with SNAPSHOT_THAW_FAILED when the agent refuses it. */
export async function thawGuest(udsPath: string, req: ThawRequest, opts: AgentOpOptions = {}): Promise<ThawReply> {
  if (req.seed.length < 16 || req.seed.length > 512) throw new RangeError(`thaw seed must be 16..512 bytes, got ${req.seed.length}`);
  const request: Record<string, unknown> = { op: "thaw", realtimeNs: req.realtimeNs.toString(), seed: req.seed.toString("base64") };
  if (req.hostname !== undefined) request.hostname = req.hostname;
  const exit = await call(udsPath, "thaw", request, false, opts);
  if (exit.code !== 0) throw new SnapshotError(ErrorCode.SNAPSHOT_THAW_FAILED, `the guest agent failed thaw (status ${exit.code})`);
  const step = exit.info.clockStepNs;
  let clockStepNs = 0n;
  if (typeof step === "string" && /^-?\d+$/.test(step)) clockStepNs = BigInt(step);
  return { clockStepNs };
}
