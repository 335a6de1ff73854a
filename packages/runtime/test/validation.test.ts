/**
 * Bad input to boot() is rejected with a stable code before any VMM starts
 * (B3, B4, B7, B8, B13, B142). No KVM needed: none of these may boot.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { boot, isStasisError, type BootOptions, type ErrorCode } from "@stasis/runtime";

const dir = mkdtempSync(path.join(os.tmpdir(), "stasis-validation-"));
const image = path.join(dir, "rootfs.tar");
writeFileSync(image, Buffer.alloc(10240)); // an empty tar archive: two zero blocks
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function codeOf(opts: BootOptions): Promise<ErrorCode> {
  try {
    const vm = await boot(opts);
    await vm.kill();
  } catch (e) {
    if (isStasisError(e)) return e.code;
    throw e;
  }
  throw new Error("boot() accepted invalid options");
}

describe("boot() input validation", () => {
  it("cmd without image → BOOT_CMD_WITHOUT_IMAGE (B3)", async () => {
    expect(await codeOf({ cmd: ["true"] })).toBe("BOOT_CMD_WITHOUT_IMAGE");
  });
  it("image without cmd and without a baked cmd → BOOT_CMD_MISSING (B4)", async () => {
    expect(await codeOf({ image })).toBe("BOOT_CMD_MISSING");
    expect(await codeOf({})).toBe("BOOT_CMD_MISSING");
    expect(await codeOf({ image, cmd: [] })).toBe("BOOT_CMD_MISSING");
  });
  it("missing image → BOOT_IMAGE_NOT_FOUND (B8)", async () => {
    expect(await codeOf({ image: path.join(dir, "nope.tar.gz"), cmd: ["true"] })).toBe("BOOT_IMAGE_NOT_FOUND");
  });
  it("relative or NUL cwd → BOOT_CWD_INVALID (B7)", async () => {
    expect(await codeOf({ image, cmd: ["true"], guestCwd: "tmp" })).toBe("BOOT_CWD_INVALID");
    expect(await codeOf({ image, cmd: ["true"], guestCwd: "/tm\0p" })).toBe("BOOT_CWD_INVALID");
  });
  it("memory out of range or not an integer → BOOT_MEMORY_INVALID (B13)", async () => {
    for (const memory of [0, -5, 1.5, 2 ** 31]) {
      expect(await codeOf({ image, cmd: ["true"], memory })).toBe("BOOT_MEMORY_INVALID");
    }
  });
  it("bad cpus / env → BOOT_CPUS_INVALID / BOOT_ENV_INVALID", async () => {
    expect(await codeOf({ image, cmd: ["true"], cpus: 0 })).toBe("BOOT_CPUS_INVALID");
    expect(await codeOf({ image, cmd: ["true"], env: { "A=B": "1" } })).toBe("BOOT_ENV_INVALID");
  });
  it("missing kernel → BOOT_KERNEL_NOT_FOUND (B8)", async () => {
    expect(await codeOf({ image, cmd: ["true"], kernel: path.join(dir, "vmlinux") })).toBe("BOOT_KERNEL_NOT_FOUND");
  });
  it("missing VMM binary → BOOT_VMM_MISSING (B142)", async () => {
    expect(await codeOf({ image, cmd: ["true"], binary: path.join(dir, "stasis-vmm") })).toBe("BOOT_VMM_MISSING");
    const saved = process.env.STASIS_VMM;
    process.env.STASIS_VMM = path.join(dir, "nope");
    try {
      expect(await codeOf({ image, cmd: ["true"] })).toBe("BOOT_VMM_MISSING");
    } finally {
      if (saved === undefined) delete process.env.STASIS_VMM;
      else process.env.STASIS_VMM = saved;
    }
  });
});
