/** One request → one exit frame, for the agent's short control ops (thaw, start). */
import { connectAgent } from "./bridge.js";
import { DEFAULT_RETRY_MS, execUnavailable } from "./exec.js";
import { AgentSession, encodeRequest, requestTooLarge, type AgentExit, type AgentFailure } from "./session.js";

export interface AgentOpOptions {
  /** Time for connect retries plus the answer (default 10000). */
  timeoutMs?: number;
  retryMs?: number;
}

export const DEFAULT_OP_TIMEOUT_MS = 10_000;

/** Sends `request` as op `op`; an `F` answer becomes `refused(op, failure)`. */
export async function callAgentOp(
  udsPath: string,
  op: string,
  request: Record<string, unknown>,
  opts: AgentOpOptions,
  refused: (op: string, f: AgentFailure) => Error,
): Promise<AgentExit> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_OP_TIMEOUT_MS;
  const start = Date.now();
  const conn = await connectAgent(udsPath, { timeoutMs, retryMs: opts.retryMs ?? DEFAULT_RETRY_MS, retry: true, unavailable: execUnavailable });
  return new AgentSession(conn, {
    request: encodeRequest(request, requestTooLarge(op)),
    expectAccept: false,
    timeoutMs: Math.max(1, timeoutMs - (Date.now() - start)),
    timeoutError: () => execUnavailable(`the guest agent did not answer ${op} within ${timeoutMs} ms`),
    unavailable: execUnavailable,
    failure: (f) => refused(op, f),
    what: op,
  }).done;
}
