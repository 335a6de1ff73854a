/** The cache's size bound: `STASIS_WARM_CACHE_SIZE`, else 8 GiB. */
import { ErrorCode } from "../errors/index.js";
import { WarmError } from "./errors.js";

export const DEFAULT_WARM_MAX_BYTES = 8 * 1024 ** 3;

const UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** What parseWarmSize accepts, for messages. */
export const WARM_SIZE_FORMS = "a number of bytes, or a number with a K, M, G or T suffix (binary: 1K = 1024), e.g. 8G, 512M, 1.5T";

/**
 * Bytes from `8G`, `512M`, `1.5T`, `4096`: a decimal number, optionally with
 * a K/M/G/T suffix in binary units (`KiB`, `K`, `kb` all mean 1024).
 * Undefined when `text` is not of that form.
 */
export function parseWarmSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgtKMGT])(?:i?[bB])?|[bB])?\s*$/.exec(text);
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * UNITS[(m[2] ?? "").toUpperCase()]!);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** The bound to prune to. WARM_CACHE_SIZE_INVALID when STASIS_WARM_CACHE_SIZE is set to something else than a size. */
export function warmMaxBytes(): number {
  const fromEnv = process.env.STASIS_WARM_CACHE_SIZE;
  if (fromEnv === undefined || fromEnv.trim() === "") return DEFAULT_WARM_MAX_BYTES;
  const bytes = parseWarmSize(fromEnv);
  if (bytes === undefined) {
    throw new WarmError(
      ErrorCode.WARM_CACHE_SIZE_INVALID,
      `STASIS_WARM_CACHE_SIZE=${JSON.stringify(fromEnv)} is not a size: set it to ${WARM_SIZE_FORMS}, or unset it for the default 8G`,
    );
  }
  return bytes;
}
