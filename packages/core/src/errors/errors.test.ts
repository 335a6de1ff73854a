import { describe, expect, it } from "vitest";
import { BootError, ErrorCode, ParseError, StasisError, formatStasisError, isStasisError } from "./index.js";

describe("errors (B151)", () => {
  it("carries code, retryable and cause, and names the class", () => {
    const cause = Object.assign(new Error("ENOENT: no such file"), { code: "ENOENT" });
    const err = new BootError(ErrorCode.BOOT_IMAGE_NOT_FOUND, "image ./x.tar.gz not found", { cause });
    expect(err).toBeInstanceOf(StasisError);
    expect(err.code).toBe("BOOT_IMAGE_NOT_FOUND");
    expect(err.retryable).toBe(false);
    expect(err.cause).toBe(cause);
    expect(err.name).toBe("BootError");
    expect(isStasisError(err)).toBe(true);
    expect(isStasisError(err, "BOOT_IMAGE_NOT_FOUND")).toBe(true);
    expect(isStasisError(err, "BOOT_TIMEOUT")).toBe(false);
    expect(isStasisError(new Error("x"))).toBe(false);
  });

  it("ErrorCode maps each code to itself", () => {
    for (const [k, v] of Object.entries(ErrorCode)) expect(k).toBe(v);
    expect(Object.isFrozen(ErrorCode)).toBe(true);
  });

  it("formats the code inline and walks the cause chain without stacks (B152)", () => {
    const inner = Object.assign(new Error("permission denied"), { code: "EACCES" });
    const mid = new ParseError(ErrorCode.PARSE_FLAG_MALFORMED, "--env FOO needs KEY=VALUE", { cause: inner });
    const text = formatStasisError(new BootError(ErrorCode.BOOT_PACK_FAILED, "could not pack", { cause: mid }));
    expect(text).toBe(
      "error [BOOT_PACK_FAILED]: could not pack\n" +
        "  caused by [PARSE_FLAG_MALFORMED]: --env FOO needs KEY=VALUE\n" +
        "  caused by [EACCES]: permission denied",
    );
    expect(text).not.toMatch(/\bat .*:\d+:\d+/);
  });
});
