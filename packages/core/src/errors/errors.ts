import type { ErrorCode } from "./codes.js";

export interface StasisErrorOptions {
  /** The same call might succeed later (transient condition). Default false. */
  retryable?: boolean;
  cause?: unknown;
}

/** Base of every error stasis raises for a known condition. */
export class StasisError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, opts: StasisErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.name = new.target.name;
  }
}

export class BootError extends StasisError {}
export class ExecError extends StasisError {}
export class SnapshotError extends StasisError {}
export class ProvisionError extends StasisError {}
export class RegistryError extends StasisError {}
export class FilesError extends StasisError {}
export class MountError extends StasisError {}
export class SecretsError extends StasisError {}
export class WinsizeError extends StasisError {}
export class SandboxError extends StasisError {}
export class CacheError extends StasisError {}
export class GvproxyError extends StasisError {}
export class MkinitramfsError extends StasisError {}
export class ParseError extends StasisError {}

export function isStasisError(err: unknown, code?: ErrorCode): err is StasisError {
  return err instanceof StasisError && (code === undefined || err.code === code);
}

/**
 * CLI-style rendering: `error [CODE]: message`, then each cause in turn.
 * Never includes a stack trace.
 */
export function formatStasisError(err: StasisError): string {
  const lines = [`error [${err.code}]: ${err.message}`];
  let cause: unknown = err.cause;
  for (let depth = 0; cause !== undefined && cause !== null && depth < 8; depth++) {
    if (cause instanceof StasisError) {
      lines.push(`  caused by [${cause.code}]: ${cause.message}`);
    } else if (cause instanceof Error) {
      const code = (cause as NodeJS.ErrnoException).code;
      lines.push(`  caused by${code ? ` [${code}]` : ""}: ${cause.message}`);
    } else {
      lines.push(`  caused by: ${String(cause)}`);
    }
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return lines.join("\n");
}
