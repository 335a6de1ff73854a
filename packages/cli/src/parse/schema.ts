/**
 * The one description of the command line: the parser, --help and (later)
 * agent-context are all driven from it, so they cannot drift apart.
 */

export interface FlagSpec {
  /** Long name without dashes. */
  name: string;
  short?: string;
  aliases?: string[];
  /** Placeholder for the value; absent = a boolean switch. */
  value?: string;
  repeatable?: boolean;
  description: string;
}

export interface PositionalSpec {
  name: string;
  optional?: boolean;
  description: string;
}

export interface CommandSpec {
  name: string;
  aliases?: string[];
  summary: string;
  positionals: PositionalSpec[];
  flags: FlagSpec[];
  /** Accepts `-- <cmd…>` (the guest argv). */
  guestArgv?: boolean;
}

export const commands: CommandSpec[] = [
  {
    name: "boot",
    summary: "boot a microVM, run a command in it, exit with its status",
    positionals: [{ name: "image", optional: true, description: "rootfs tarball (default: the built-in base)" }],
    guestArgv: true,
    flags: [
      { name: "env", value: "KEY=VALUE", repeatable: true, description: "guest environment variable" },
      { name: "cwd", value: "abs-path", description: "guest working directory" },
      { name: "memory", value: "mib", description: "guest RAM in MiB (default: half the host, 512..16384)" },
      { name: "cpus", value: "n", description: "vCPUs (default 1)" },
    ],
  },
];

export const globalFlags: FlagSpec[] = [
  { name: "help", short: "h", description: "show help" },
  { name: "version", description: "print the version" },
];
