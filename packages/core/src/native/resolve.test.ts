import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { isStasisError } from "../errors/index.js";
import { nativePackageName, resolveMke2fs, resolveVmmBinary, setNativeLoaderForTests } from "./resolve.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "stasis-resolve-"));
const fakeVmm = path.join(dir, "stasis-vmm");
writeFileSync(fakeVmm, "#!/bin/sh\n");
chmodSync(fakeVmm, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (isStasisError(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe("native binary resolution (B142, B143)", () => {
  let savedEnv: string | undefined;
  beforeEach(() => {
    savedEnv = process.env.STASIS_VMM;
    delete process.env.STASIS_VMM;
  });
  afterEach(() => {
    setNativeLoaderForTests(undefined);
    if (savedEnv !== undefined) process.env.STASIS_VMM = savedEnv;
  });

  it("names the package for this platform", () => {
    expect(nativePackageName("x64", "linux")).toBe("@stasis/native-x64-linux");
  });

  it("explicit path wins, then STASIS_VMM, then the package", () => {
    setNativeLoaderForTests(() => ({ binary: "/nonexistent/vmm" }));
    expect(resolveVmmBinary(fakeVmm)).toBe(fakeVmm);
    process.env.STASIS_VMM = fakeVmm;
    expect(resolveVmmBinary()).toBe(fakeVmm);
    delete process.env.STASIS_VMM;
    setNativeLoaderForTests(() => ({ binary: fakeVmm }));
    expect(resolveVmmBinary()).toBe(fakeVmm);
  });

  it("package missing → BOOT_VMM_MISSING naming the package", () => {
    setNativeLoaderForTests(() => {
      throw Object.assign(new Error("Cannot find module"), { code: "MODULE_NOT_FOUND" });
    });
    expect(codeOf(() => resolveVmmBinary())).toBe("BOOT_VMM_MISSING");
    try {
      resolveVmmBinary();
    } catch (e) {
      expect(String((e as Error).message)).toContain("@stasis/native-");
    }
  });

  it("package without a usable binary → BOOT_VMM_PACKAGE_BROKEN", () => {
    setNativeLoaderForTests(() => ({ binary: path.join(dir, "missing") }));
    expect(codeOf(() => resolveVmmBinary())).toBe("BOOT_VMM_PACKAGE_BROKEN");
    setNativeLoaderForTests(() => ({}));
    expect(codeOf(() => resolveVmmBinary())).toBe("BOOT_VMM_PACKAGE_BROKEN");
  });

  it("tool lookup never throws, even with a broken package", () => {
    setNativeLoaderForTests(() => {
      throw new Error("broken");
    });
    expect(() => resolveMke2fs()).not.toThrow();
  });
});
