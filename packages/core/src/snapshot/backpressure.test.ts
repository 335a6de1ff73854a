import { describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import { DEFAULT_FREE_MEMORY_THRESHOLD, checkForkBackpressure, readHostFreeBytes, readHostTotalBytes } from "./backpressure.js";

const total = 1000;
const free = (n: number) => async () => n;

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return isStasisError(e) ? e.code : (e as Error).name;
  }
  return undefined;
}

describe("fork backpressure (B128, api.md §13.3)", () => {
  it("refuses below threshold × total, accepts at and above it", async () => {
    expect(await codeOf(checkForkBackpressure({ threshold: 0.1, totalBytes: total, readFree: free(99) }))).toBe("FORK_MEMORY_BACKPRESSURE");
    expect(await codeOf(checkForkBackpressure({ threshold: 0.1, totalBytes: total, readFree: free(100) }))).toBeUndefined();
    expect(await codeOf(checkForkBackpressure({ threshold: 0.1, totalBytes: total, readFree: free(101) }))).toBeUndefined();
  });

  it("≤ 0 disables (memory is not even read); > 1 counts as 1", async () => {
    let read = false;
    const spy = async () => {
      read = true;
      return 0;
    };
    await checkForkBackpressure({ threshold: 0, totalBytes: total, readFree: spy });
    await checkForkBackpressure({ threshold: -1, totalBytes: total, readFree: spy });
    expect(read).toBe(false);
    expect(await codeOf(checkForkBackpressure({ threshold: 5, totalBytes: total, readFree: free(1000) }))).toBeUndefined();
    expect(await codeOf(checkForkBackpressure({ threshold: 5, totalBytes: total, readFree: free(999) }))).toBe("FORK_MEMORY_BACKPRESSURE");
    expect(await codeOf(checkForkBackpressure({ threshold: Number.NaN, totalBytes: total }))).toBe("TypeError");
  });

  it("the refusal is a retryable BootError naming the numbers", async () => {
    try {
      await checkForkBackpressure({ threshold: 0.5, totalBytes: 8 * 1024 ** 3, readFree: free(1024 ** 3) });
      expect.unreachable();
    } catch (e) {
      expect(isStasisError(e, "FORK_MEMORY_BACKPRESSURE")).toBe(true);
      expect((e as { retryable: boolean }).retryable).toBe(true);
      expect((e as Error).name).toBe("BootError");
      expect((e as Error).message).toContain("1024 MiB available");
    }
  });

  it("reads the host", async () => {
    expect(DEFAULT_FREE_MEMORY_THRESHOLD).toBe(0.01);
    expect(readHostTotalBytes()).toBeGreaterThan(0);
    const f = await readHostFreeBytes();
    expect(f).toBeGreaterThan(0);
    expect(f).toBeLessThanOrEqual(readHostTotalBytes());
  });
});
