/** `VsockSecrets` (api.md §8) through the agent's `secrets` op. */
import { ErrorCode, SecretsError } from "../errors/index.js";
import { connectAgent } from "./bridge.js";
import { AgentSession, encodeRequest } from "./session.js";

export interface VsockSecretsOptions {
  /** Deadline for the whole call: connect retries and the agent's answer (default 10000). */
  timeoutMs?: number;
  /** Pause between connect attempts (default 250). */
  retryMs?: number;
}

export const DEFAULT_SECRETS_TIMEOUT_MS = 10_000;
export const DEFAULT_SECRETS_RETRY_MS = 250;

function unavailable(message: string, cause?: unknown): SecretsError {
  return new SecretsError(ErrorCode.SECRETS_AGENT_UNAVAILABLE, message, { retryable: true, cause });
}

function invalid(message: string): SecretsError {
  return new SecretsError(ErrorCode.SECRETS_VALUE_INVALID, message);
}

/** Throws SECRETS_VALUE_INVALID for a value that cannot be one `KEY=VALUE` line. Never echoes the value. */
export function validateSecrets(secrets: Record<string, string>): void {
  for (const [key, value] of Object.entries(secrets)) {
    if (typeof value !== "string") throw invalid(`secret ${JSON.stringify(key)} is not a string`);
    if (value.includes("\n")) throw invalid(`secret ${JSON.stringify(key)} contains a newline; values must be one line`);
    if (value.includes("\0")) throw invalid(`secret ${JSON.stringify(key)} contains a NUL byte`);
  }
}

/**
 * Hands `secrets` to the guest agent, which adds them to the environment of
 * every later exec and writes /run/stasis/secrets. Validation happens before
 * connecting: an invalid value sends nothing. Keys that are not shell
 * identifiers are sent and ignored by the agent.
 */
async function send(udsPath: string, secrets: Record<string, string>, opts: VsockSecretsOptions = {}): Promise<void> {
  validateSecrets(secrets);
  const request = encodeRequest({ op: "secrets", secrets }, (bytes) =>
    invalid(`the secrets add up to ${bytes} bytes of request; the agent takes at most 65536`),
  );
  const timeoutMs = opts.timeoutMs ?? DEFAULT_SECRETS_TIMEOUT_MS;
  const start = Date.now();
  const conn = await connectAgent(udsPath, {
    timeoutMs,
    retryMs: opts.retryMs ?? DEFAULT_SECRETS_RETRY_MS,
    retry: true,
    unavailable,
  });
  const left = Math.max(1, timeoutMs - (Date.now() - start));
  const exit = await new AgentSession(conn, {
    request,
    expectAccept: false,
    timeoutMs: left,
    timeoutError: () => unavailable(`the guest agent did not confirm the secrets within ${timeoutMs} ms`),
    unavailable,
    failure: (f) => new SecretsError(ErrorCode.SECRETS_AGENT_UNAVAILABLE, `the guest agent refused the secrets: ${f.error}: ${f.message}`),
    what: "secrets",
  }).done;
  if (exit.code !== 0) {
    throw new SecretsError(ErrorCode.SECRETS_AGENT_UNAVAILABLE, `the guest agent refused the secrets (status ${exit.code})`);
  }
}

export const VsockSecrets = { send } as const;
