import { describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import { autoSizeMemoryMib, defaultMemoryMib, validateMemoryMib } from "./memory.js";

const GiB = 1024 ** 3;

describe("memory sizing (B12, B13)", () => {
  it("auto-sizes to half the host, floor 512, ceiling 16 GiB", () => {
    expect(autoSizeMemoryMib(512 * 1024 * 1024)).toBe(512);
    expect(autoSizeMemoryMib(8 * GiB)).toBe(4096);
    expect(autoSizeMemoryMib(64 * GiB)).toBe(16384);
    expect(autoSizeMemoryMib(24 * GiB)).toBe(12288);
  });

  it("caps the default under kvm_pvm only", () => {
    expect(defaultMemoryMib("pvm", 24 * GiB)).toEqual({ mib: 512, capped: true });
    expect(defaultMemoryMib("hardware", 24 * GiB)).toEqual({ mib: 12288, capped: false });
    expect(defaultMemoryMib("pvm", 512 * 1024 * 1024)).toEqual({ mib: 512, capped: false });
  });

  it("rejects non-integers, zero, negatives, strings with units", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, "512M", "512", 4, 2 ** 40]) {
      expect(() => validateMemoryMib(bad)).toThrow();
      try {
        validateMemoryMib(bad);
      } catch (e) {
        expect(isStasisError(e, "BOOT_MEMORY_INVALID")).toBe(true);
      }
    }
    expect(validateMemoryMib(128)).toBe(128);
  });
});
