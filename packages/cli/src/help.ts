import { commands, exitCodes, globalFlags, type CommandSpec, type FlagSpec } from "./parse/schema.js";

function flagLine(f: FlagSpec): string {
  const names = [f.short ? `-${f.short}` : undefined, `--${f.name}`, ...(f.aliases ?? []).map((a) => `--${a}`)].filter(Boolean).join(", ");
  const value = f.value ? (f.optionalValue ? ` [<${f.value}>]` : ` <${f.value}>`) : "";
  const extra = [f.repeatable ? "repeatable" : "", f.default !== undefined ? `default ${f.default}` : ""].filter(Boolean).join("; ");
  return `  ${`${names}${value}`.padEnd(26)} ${f.description}${extra ? ` (${extra})` : ""}`;
}

export function commandHelp(spec: CommandSpec): string {
  const pos = spec.positionals.map((p) => (p.optional ? `[${p.name}${p.variadic ? "..." : ""}]` : `<${p.name}>${p.variadic ? "..." : ""}`)).join(" ");
  const guest = spec.guestArgv === "required" ? " -- <cmd>..." : spec.guestArgv === "optional" ? " [-- <cmd>...]" : "";
  const usage = `usage: stasis ${spec.name}${pos ? ` ${pos}` : ""}${spec.flags.length > 0 ? " [flags]" : ""}${guest}`;
  const lines = [usage, "", spec.summary];
  if (spec.aliases?.length) lines.push("", `aliases: ${spec.aliases.join(", ")}`);
  if (spec.positionals.length > 0) {
    lines.push("", "arguments:");
    for (const p of spec.positionals) {
      lines.push(`  ${p.name.padEnd(26)} ${p.description}${p.choices ? ` (${p.choices.join(" | ")})` : ""}`);
    }
  }
  lines.push("", "flags:", ...spec.flags.map(flagLine), flagLine(globalFlags[0]!));
  return lines.join("\n") + "\n";
}

export function exitStatusLine(): string {
  return exitCodes.map((e) => (e.code === "guest" ? e.meaning : `${e.code} ${e.meaning}`)).join("; ");
}

export function mainHelp(): string {
  const lines = commands.map((c) => {
    const names = [c.name, ...(c.aliases ?? [])].join(", ");
    return `  ${names.padEnd(14)} ${c.summary}`;
  });
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
    "targets: all digits = the VMM's host pid, anything else = a VM name",
    "",
    "exit status:",
    ...exitCodes.map((e) => `  ${String(e.code).padEnd(6)} ${e.meaning}`),
    "",
  ].join("\n");
}
