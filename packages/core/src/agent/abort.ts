/** Node-style abort errors (`err.name === "AbortError"`, `err.code === "ABORT_ERR"`). */

export class AbortError extends Error {
  readonly code = "ABORT_ERR";

  constructor(message = "The operation was aborted", opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = "AbortError";
  }
}

/** The error an aborted operation rejects with; the signal's reason is its `cause`. */
export function abortError(signal: AbortSignal): AbortError {
  return new AbortError("The operation was aborted", { cause: signal.reason });
}

/** Resolves after `ms`, or rejects with an AbortError when `signal` fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
