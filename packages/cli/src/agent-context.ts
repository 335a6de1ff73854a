/**
 * `stasis agent-context`: the machine-readable description of the CLI,
 * generated from the same schema the parser uses (cli.md §3.13).
 */
import { commands, exitCodes, globalFlags, type FlagSpec, type PositionalSpec } from "./parse/schema.js";

export const AGENT_CONTEXT_SCHEMA_VERSION = 1;

export interface AgentContextFlag {
  name: string;
  short: string | null;
  aliases: string[];
  value: string | null;
  optionalValue: boolean;
  repeatable: boolean;
  default: string | number | boolean | null;
  description: string;
}

export interface AgentContextPositional {
  name: string;
  optional: boolean;
  kind: PositionalSpec["kind"];
  choices: string[] | null;
  /** Takes every remaining argument (last positional only). */
  variadic: boolean;
  description: string;
}

export interface AgentContextCommand {
  name: string;
  aliases: string[];
  summary: string;
  positionals: AgentContextPositional[];
  flags: AgentContextFlag[];
  /** Whether `-- <cmd…>` is taken: "none", "optional" or "required". */
  guestArgv: "none" | "optional" | "required";
}

export interface AgentContext {
  schemaVersion: number;
  cli: "stasis";
  version: string;
  commands: AgentContextCommand[];
  globalFlags: AgentContextFlag[];
  exitCodes: { code: number | "guest"; meaning: string }[];
  targets: string;
}

function flag(f: FlagSpec): AgentContextFlag {
  return {
    name: f.name,
    short: f.short ?? null,
    aliases: f.aliases ?? [],
    value: f.value ?? null,
    optionalValue: f.optionalValue ?? false,
    repeatable: f.repeatable ?? false,
    default: f.default ?? (f.value === undefined ? false : null),
    description: f.description,
  };
}

export function agentContext(version: string): AgentContext {
  return {
    schemaVersion: AGENT_CONTEXT_SCHEMA_VERSION,
    cli: "stasis",
    version,
    commands: commands.map((c) => ({
      name: c.name,
      aliases: c.aliases ?? [],
      summary: c.summary,
      positionals: c.positionals.map((p) => ({
        name: p.name,
        optional: p.optional ?? false,
        kind: p.kind,
        choices: p.choices ?? null,
        variadic: p.variadic ?? false,
        description: p.description,
      })),
      flags: c.flags.map(flag),
      guestArgv: c.guestArgv ?? "none",
    })),
    globalFlags: globalFlags.map(flag),
    exitCodes: exitCodes.map((e) => ({ ...e })),
    targets: "digits ⇒ pid, else name",
  };
}
