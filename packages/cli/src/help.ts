import { commands, globalFlags, type CommandSpec, type FlagSpec } from "./parse/schema.js";

function flagLine(f: FlagSpec): string {
  const names = [f.short ? `-${f.short}` : undefined, `--${f.name}`, ...(f.aliases ?? []).map((a) => `--${a}`)].filter(Boolean).join(", ");
  const left = `${names}${f.value ? ` <${f.value}>` : ""}`;
  return `  ${left.padEnd(26)} ${f.description}${f.repeatable ? " (repeatable)" : ""}`;
}

export function commandHelp(spec: CommandSpec): string {
  const pos = spec.positionals.map((p) => (p.optional ? `[${p.name}]` : `<${p.name}>`)).join(" ");
  const usage = `usage: stasis ${spec.name}${pos ? ` ${pos}` : ""} [flags]${spec.guestArgv ? " [-- <cmd>...]" : ""}`;
  return [usage, "", spec.summary, "", "flags:", ...spec.flags.map(flagLine), flagLine(globalFlags[0]!)].join("\n") + "\n";
}

export function mainHelp(): string {
  const lines = commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`);
  return [
    "stasis — Linux microVMs from TypeScript",
    "",
    "usage: stasis <command> [flags]",
    "",
    "commands:",
    ...lines,
    "",
    "global flags:",
    ...globalFlags.map(flagLine),
    "",
    "exit status: 0 success, 1 runtime failure, 2 usage error; `boot` passes the guest command's status through",
    "",
  ].join("\n");
}
