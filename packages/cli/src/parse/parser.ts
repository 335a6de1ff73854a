import { ErrorCode, ParseError } from "@stasis/runtime";
import type { CommandSpec, FlagSpec } from "./schema.js";

export interface ParsedCommand {
  command: CommandSpec;
  positionals: string[];
  /**
   * Flag name → values. Booleans hold one "true"; an optional-value flag
   * given without its value holds "".
   */
  flags: Map<string, string[]>;
  /** Everything after `--`. */
  guestArgv: string[];
}

function findFlag(spec: CommandSpec, token: string): FlagSpec | undefined {
  if (token.startsWith("--")) {
    const name = token.slice(2);
    return spec.flags.find((f) => f.name === name || f.aliases?.includes(name));
  }
  const short = token.slice(1);
  return spec.flags.find((f) => f.short === short);
}

const DIGITS = /^\d+$/;

/** Parses the arguments that follow the command name. */
export function parseCommand(spec: CommandSpec, argv: readonly string[]): ParsedCommand {
  const flags = new Map<string, string[]>();
  const positionals: string[] = [];
  let guestArgv: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === "--") {
      if (!spec.guestArgv) {
        throw new ParseError(ErrorCode.PARSE_FLAG_UNKNOWN, `\`stasis ${spec.name}\` takes no guest command after --`);
      }
      guestArgv = argv.slice(i + 1);
      break;
    }
    if (token.startsWith("-") && token !== "-") {
      const eq = token.startsWith("--") ? token.indexOf("=") : -1;
      const name = eq > 0 ? token.slice(0, eq) : token;
      const flag = findFlag(spec, name);
      if (!flag) {
        throw new ParseError(ErrorCode.PARSE_FLAG_UNKNOWN, `unknown flag ${name} for \`stasis ${spec.name}\` (see \`stasis ${spec.name} --help\`)`);
      }
      let value = "true";
      if (flag.value !== undefined && flag.optionalValue) {
        value = "";
        if (eq > 0) value = token.slice(eq + 1);
        else if (i + 1 < argv.length && DIGITS.test(argv[i + 1]!)) value = argv[++i]!;
        if (eq > 0 && !DIGITS.test(value)) {
          throw new ParseError(ErrorCode.PARSE_FLAG_MALFORMED, `--${flag.name}=${value}: expected a whole number, e.g. --${flag.name} 50`);
        }
      } else if (flag.value !== undefined) {
        if (eq > 0) value = token.slice(eq + 1);
        else if (i + 1 < argv.length && argv[i + 1] !== "--") value = argv[++i]!;
        else throw new ParseError(ErrorCode.PARSE_FLAG_MISSING_VALUE, `--${flag.name} needs a value: --${flag.name} <${flag.value}>`);
      } else if (eq > 0) {
        throw new ParseError(ErrorCode.PARSE_FLAG_MALFORMED, `--${flag.name} takes no value`);
      }
      const seen = flags.get(flag.name);
      if (seen && !flag.repeatable) {
        throw new ParseError(ErrorCode.PARSE_FLAG_DUPLICATE, `--${flag.name} may be given only once`);
      }
      flags.set(flag.name, [...(seen ?? []), value]);
      continue;
    }
    const last = spec.positionals[spec.positionals.length - 1];
    if (positionals.length >= spec.positionals.length && !last?.variadic) {
      throw new ParseError(
        ErrorCode.PARSE_FLAG_UNKNOWN,
        spec.guestArgv
          ? `unexpected argument ${JSON.stringify(token)}: put the guest command after \`--\`, e.g. stasis ${spec.name} … -- ${token}`
          : `unexpected argument ${JSON.stringify(token)} for \`stasis ${spec.name}\` (see \`stasis ${spec.name} --help\`)`,
      );
    }
    const pos = spec.positionals[Math.min(positionals.length, spec.positionals.length - 1)]!;
    if (pos.choices && !pos.choices.includes(token)) {
      throw new ParseError(ErrorCode.PARSE_FLAG_MALFORMED, `<${pos.name}> must be one of ${pos.choices.join(", ")}, not ${JSON.stringify(token)}`);
    }
    positionals.push(token);
  }
  const missing = spec.positionals.slice(positionals.length).find((p) => !p.optional);
  if (missing) {
    throw new ParseError(ErrorCode.PARSE_FLAG_MISSING_VALUE, `\`stasis ${spec.name}\` needs <${missing.name}>: ${missing.description}`);
  }
  if (spec.guestArgv === "required" && guestArgv.length === 0) {
    throw new ParseError(
      ErrorCode.PARSE_FLAG_MISSING_VALUE,
      `\`stasis ${spec.name}\` needs a command after --, e.g. stasis ${[spec.name, ...positionals].join(" ")} -- uname -a`,
    );
  }
  return { command: spec, positionals, flags, guestArgv };
}

/** The single value of a flag, if given. */
export function flagValue(parsed: ParsedCommand, name: string): string | undefined {
  return parsed.flags.get(name)?.[0];
}

/** Whether a flag was given at all. */
export function hasFlag(parsed: ParsedCommand, name: string): boolean {
  return parsed.flags.has(name);
}

/** `KEY=VALUE` pairs from a repeatable flag. */
export function keyValues(flag: string, values: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new ParseError(ErrorCode.PARSE_FLAG_MALFORMED, `--${flag} ${v}: expected KEY=VALUE`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** A decimal integer flag value (no units, no signs). */
export function integer(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value)) {
    throw new ParseError(ErrorCode.PARSE_FLAG_MALFORMED, `--${flag} ${value}: expected a whole number${flag === "memory" ? " of MiB, without a unit" : ""}`);
  }
  return Number(value);
}

/** A VM name for `--name`: non-empty and not all digits (digits address a pid). */
export function vmName(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value === "" || DIGITS.test(value)) {
    throw new ParseError(
      ErrorCode.PARSE_FLAG_MALFORMED,
      `--${flag} ${JSON.stringify(value)}: a VM name must be non-empty and not all digits (targets made of digits are pids)`,
    );
  }
  return value;
}

/** An absolute guest path for `--cwd`. */
export function absolutePath(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!value.startsWith("/")) {
    throw new ParseError(ErrorCode.PARSE_FLAG_MALFORMED, `--${flag} ${value}: expected an absolute guest path (starting with /)`);
  }
  return value;
}
