import { describe, expect, it } from "vitest";
import { isStasisError } from "@stasis/runtime";
import { absolutePath, integer, keyValues, parseCommand, vmName } from "./parser.js";
import { findCommand, type CommandSpec } from "./schema.js";

const bootSpec = findCommand("boot")!;
const attachSpec = findCommand("attach")!;
const execSpec = findCommand("exec")!;

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
    expect(code(() => parseCommand(bootSpec, ["--name", "a", "--name", "b"]))).toBe("PARSE_FLAG_DUPLICATE");
    expect(code(() => parseCommand(bootSpec, ["--name"]))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parseCommand(bootSpec, ["--detach=yes"]))).toBe("PARSE_FLAG_MALFORMED");
    expect(code(() => keyValues("env", ["FOO"]))).toBe("PARSE_FLAG_MALFORMED");
    expect(code(() => integer("memory", "512M"))).toBe("PARSE_FLAG_MALFORMED");
    expect(code(() => integer("memory", "-1"))).toBe("PARSE_FLAG_MALFORMED");
    expect(integer("memory", "1024")).toBe(1024);
  });

  it("refuses a second positional: the guest command goes after --", () => {
    expect(code(() => parseCommand(bootSpec, ["img", "echo"]))).toBe("PARSE_FLAG_UNKNOWN");
  });

  it("accepts aliases and short forms", () => {
    expect(parseCommand(bootSpec, ["--detached", "--", "true"]).flags.has("detach")).toBe(true);
    expect(parseCommand(execSpec, ["w", "--pty", "--", "sh"]).flags.has("tty")).toBe(true);
    expect(parseCommand(findCommand("stop")!, ["w", "-9"]).flags.has("force")).toBe(true);
    expect(parseCommand(findCommand("gc")!, ["-n"]).flags.has("dry-run")).toBe(true);
    expect(findCommand("ls")?.name).toBe("list");
    expect(findCommand("ps")?.name).toBe("list");
  });

  it("needs the target and, for exec, a guest command", () => {
    expect(code(() => parseCommand(execSpec, []))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parseCommand(execSpec, ["w"]))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parseCommand(execSpec, ["w", "--"]))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parseCommand(findCommand("stop")!, ["--json"]))).toBe("PARSE_FLAG_MISSING_VALUE");
    expect(code(() => parseCommand(findCommand("repl")!, ["w", "--", "x"]))).toBe("PARSE_FLAG_UNKNOWN");
    const p = parseCommand(execSpec, ["my/vm", "--env", "A=1", "--", "sh", "-c", "exit 4"]);
    expect(p.positionals).toEqual(["my/vm"]);
    expect(p.guestArgv).toEqual(["sh", "-c", "exit 4"]);
  });

  it("--tail takes an optional number: --tail, --tail 50, --tail=50", () => {
    expect(parseCommand(attachSpec, ["w", "--tail"]).flags.get("tail")).toEqual([""]);
    expect(parseCommand(attachSpec, ["w", "--tail", "50"]).flags.get("tail")).toEqual(["50"]);
    expect(parseCommand(attachSpec, ["w", "--tail=50"]).flags.get("tail")).toEqual(["50"]);
    // A non-number after --tail is not its value: here it is the target.
    const p = parseCommand(attachSpec, ["--tail", "web"]);
    expect(p.flags.get("tail")).toEqual([""]);
    expect(p.positionals).toEqual(["web"]);
    expect(parseCommand(attachSpec, ["w", "--tail", "--shell", "sh"]).flags.get("shell")).toEqual(["sh"]);
    expect(code(() => parseCommand(attachSpec, ["w", "--tail=abc"]))).toBe("PARSE_FLAG_MALFORMED");
    expect(code(() => parseCommand(attachSpec, ["w", "--tail="]))).toBe("PARSE_FLAG_MALFORMED");
    expect(code(() => parseCommand(attachSpec, ["w", "--tail", "1", "--tail"]))).toBe("PARSE_FLAG_DUPLICATE");
  });

  it("checks positional choices", () => {
    const completion = findCommand("completion")!;
    expect(parseCommand(completion, ["zsh"]).positionals).toEqual(["zsh"]);
    expect(code(() => parseCommand(completion, ["tcsh"]))).toBe("PARSE_FLAG_MALFORMED");
    expect(code(() => parseCommand(completion, []))).toBe("PARSE_FLAG_MISSING_VALUE");
  });

  it("a variadic last positional takes every remaining argument; choices apply to the one they belong to", () => {
    const spec: CommandSpec = {
      name: "t",
      summary: "",
      positionals: [
        { name: "verb", kind: "word", choices: ["a", "b"], description: "" },
        { name: "rest", kind: "word", optional: true, variadic: true, description: "" },
      ],
      flags: [{ name: "x", description: "" }],
    };
    expect(parseCommand(spec, ["a"]).positionals).toEqual(["a"]);
    expect(parseCommand(spec, ["a", "1", "--x", "2", "3"]).positionals).toEqual(["a", "1", "2", "3"]);
    expect(parseCommand(spec, ["b", "a"]).positionals).toEqual(["b", "a"]);
    expect(code(() => parseCommand(spec, ["c", "1"]))).toBe("PARSE_FLAG_MALFORMED");
    expect(code(() => parseCommand(spec, ["a", "--", "1"]))).toBe("PARSE_FLAG_UNKNOWN");
  });

  it("VM names are not all digits; --cwd is absolute", () => {
    expect(vmName("name", "web")).toBe("web");
    expect(vmName("name", "a/b/c")).toBe("a/b/c");
    expect(vmName("name", "web1")).toBe("web1");
    expect(code(() => vmName("name", "1234"))).toBe("PARSE_FLAG_MALFORMED");
    expect(code(() => vmName("name", ""))).toBe("PARSE_FLAG_MALFORMED");
    expect(absolutePath("cwd", "/tmp")).toBe("/tmp");
    expect(code(() => absolutePath("cwd", "tmp"))).toBe("PARSE_FLAG_MALFORMED");
  });
});
