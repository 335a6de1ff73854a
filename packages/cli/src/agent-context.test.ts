/** agent-context and the parser come from one schema and must agree (B155). */
import { describe, expect, it } from "vitest";
import { isStasisError } from "@stasis/runtime";
import { agentContext, type AgentContextCommand, type AgentContextFlag } from "./agent-context.js";
import { parseCommand } from "./parse/parser.js";
import { commands, findCommand, globalFlags } from "./parse/schema.js";

const ctx = agentContext("9.9.9");

/** Arguments that satisfy a command's required positionals and guest command. */
function minimalArgs(c: AgentContextCommand): { before: string[]; after: string[] } {
  const before = c.positionals.filter((p) => !p.optional).map((p) => p.choices?.[0] ?? "vm1");
  const after = c.guestArgv === "required" ? ["--", "true"] : [];
  return { before, after };
}

function sampleValue(f: AgentContextFlag): string[] {
  if (f.value === null) return [];
  if (f.optionalValue) return ["3"];
  if (f.value === "KEY=VALUE") return ["K=V"];
  return ["/x"];
}

function parseCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (isStasisError(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe("agent-context", () => {
  it("is one versioned document with the exit codes of cli.md §2", () => {
    expect(ctx.schemaVersion).toBe(1);
    expect(ctx.cli).toBe("stasis");
    expect(ctx.version).toBe("9.9.9");
    expect(ctx.exitCodes.map((e) => e.code)).toEqual([0, 1, 2, "guest"]);
    expect(ctx.targets).toBe("digits ⇒ pid, else name");
    expect(JSON.parse(JSON.stringify(ctx))).toEqual(ctx);
    expect(ctx.globalFlags.map((f) => f.name)).toEqual(globalFlags.map((f) => f.name));
  });

  it("lists every schema command, alias and flag, with every field", () => {
    expect(ctx.commands.map((c) => c.name)).toEqual(commands.map((c) => c.name));
    for (const spec of commands) {
      const c = ctx.commands.find((x) => x.name === spec.name)!;
      expect(c.aliases).toEqual(spec.aliases ?? []);
      expect(c.flags.map((f) => f.name)).toEqual(spec.flags.map((f) => f.name));
      for (const f of c.flags) {
        expect(Object.keys(f).sort()).toEqual(["aliases", "default", "description", "name", "optionalValue", "repeatable", "short", "value"]);
      }
    }
    for (const name of ["boot", "list", "exec", "attach", "repl", "stop", "gc", "warm", "agent-context", "completion"]) {
      expect(ctx.commands.some((c) => c.name === name), name).toBe(true);
    }
    expect(ctx.commands.find((c) => c.name === "list")!.aliases).toEqual(["ls", "ps"]);
    const warm = ctx.commands.find((c) => c.name === "warm")!;
    expect(warm.positionals.map((p) => [p.name, p.variadic])).toEqual([["action", false], ["key", true]]);
    expect(warm.positionals[0]!.choices).toEqual(["ls", "rm", "prune"]);
  });

  it("the parser accepts every listed spelling of every flag", () => {
    for (const c of ctx.commands) {
      const spec = findCommand(c.name)!;
      for (const alias of c.aliases) expect(findCommand(alias)).toBe(spec);
      const { before, after } = minimalArgs(c);
      expect(parseCode(() => parseCommand(spec, [...before, ...after])), c.name).toBeUndefined();
      for (const f of c.flags) {
        const spellings = [`--${f.name}`, ...f.aliases.map((a) => `--${a}`), ...(f.short ? [`-${f.short}`] : [])];
        for (const s of spellings) {
          const parsed = parseCommand(spec, [...before, s, ...sampleValue(f), ...after]);
          expect(parsed.flags.has(f.name), `${c.name} ${s}`).toBe(true);
          if (f.repeatable) {
            const twice = parseCommand(spec, [...before, s, ...sampleValue(f), s, ...sampleValue(f), ...after]);
            expect(twice.flags.get(f.name)).toHaveLength(2);
          }
        }
        if (f.optionalValue) expect(parseCommand(spec, [...before, `--${f.name}`, ...after]).flags.get(f.name)).toEqual([""]);
      }
    }
  });

  it("the parser rejects every flag that is not listed for the command", () => {
    const everyFlag = new Set(ctx.commands.flatMap((c) => c.flags.flatMap((f) => [`--${f.name}`, ...f.aliases.map((a) => `--${a}`), ...(f.short ? [`-${f.short}`] : [])])));
    everyFlag.add("--definitely-not-a-flag");
    everyFlag.add("-Z");
    for (const c of ctx.commands) {
      const spec = findCommand(c.name)!;
      const mine = new Set(c.flags.flatMap((f) => [`--${f.name}`, ...f.aliases.map((a) => `--${a}`), ...(f.short ? [`-${f.short}`] : [])]));
      const { before, after } = minimalArgs(c);
      for (const flag of everyFlag) {
        if (mine.has(flag)) continue;
        expect(parseCode(() => parseCommand(spec, [...before, flag, ...after])), `${c.name} ${flag}`).toBe("PARSE_FLAG_UNKNOWN");
      }
      if (c.guestArgv === "none") {
        expect(parseCode(() => parseCommand(spec, [...before, "--", "x"])), `${c.name} -- x`).toBe("PARSE_FLAG_UNKNOWN");
      }
    }
  });
});
