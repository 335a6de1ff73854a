import { describe, expect, it } from "vitest";
import { isStasisError } from "@stasis/runtime";
import { integer, keyValues, parseCommand } from "./parser.js";
import { commands } from "./schema.js";

const bootSpec = commands.find((c) => c.name === "boot")!;

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (isStasisError(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe("CLI parser (B156)", () => {
  it("splits positionals, repeatable flags and the guest argv", () => {
    const p = parseCommand(bootSpec, ["img.tar.gz", "--env", "A=1", "--env=B=2", "--cwd", "/tmp", "--", "sh", "-c", "echo --env"]);
    expect(p.positionals).toEqual(["img.tar.gz"]);
    expect(p.flags.get("env")).toEqual(["A=1", "B=2"]);
    expect(p.flags.get("cwd")).toEqual(["/tmp"]);
    expect(p.guestArgv).toEqual(["sh", "-c", "echo --env"]);
    expect(keyValues("env", p.flags.get("env"))).toEqual({ A: "1", B: "2" });
  });

  it("reports unknown, missing-value, duplicate and malformed flags with their codes", () => {
    expect(code(() => parseCommand(bootSpec, ["--nope"]))).toBe("PARSE_FLAG_UNKNOWN");
    expect(code(() => parseCommand(bootSpec, ["--cwd"]))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parseCommand(bootSpec, ["--cwd", "--", "true"]))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parseCommand(bootSpec, ["--cwd", "/a", "--cwd", "/b"]))).toBe("PARSE_FLAG_DUPLICATE");
    expect(code(() => keyValues("env", ["FOO"]))).toBe("PARSE_FLAG_MALFORMED");
    expect(code(() => integer("memory", "512M"))).toBe("PARSE_FLAG_MALFORMED");
    expect(code(() => integer("memory", "-1"))).toBe("PARSE_FLAG_MALFORMED");
    expect(integer("memory", "1024")).toBe(1024);
  });

  it("refuses a second positional: the guest command goes after --", () => {
    expect(code(() => parseCommand(bootSpec, ["img", "echo"]))).toBe("PARSE_FLAG_UNKNOWN");
  });
});
