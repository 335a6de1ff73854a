/**
 * The one description of the command line: the parser, --help,
 * `agent-context` and `completion` are all driven from it, so they cannot
 * drift apart.
 */

export interface FlagSpec {
  /** Long name without dashes. */
  name: string;
  /** Single-character short form without the dash (`p` for `-p`). */
  short?: string;
  /** Other long names (without dashes) for the same flag. */
  aliases?: string[];
  /** Placeholder for the value; absent = a boolean switch. */
  value?: string;
  /**
   * The value may be left out (`--tail`, `--tail 50`, `--tail=50`). Such a
   * value is always a whole number: the next token is taken as the value
   * only if it is all digits.
   */
  optionalValue?: boolean;
  repeatable?: boolean;
  /** Default shown in help and agent-context (booleans default to false). */
  default?: string | number;
  description: string;
}

/** What a positional holds, for completion. */
export type PositionalKind = "target" | "file" | "dir" | "word";

export interface PositionalSpec {
  name: string;
  optional?: boolean;
  kind: PositionalKind;
  /** The only values accepted (anything else is PARSE_FLAG_MALFORMED). */
  choices?: string[];
  /** Last positional only: takes every remaining argument. */
  variadic?: boolean;
  description: string;
}

export interface CommandSpec {
  name: string;
  aliases?: string[];
  summary: string;
  positionals: PositionalSpec[];
  flags: FlagSpec[];
  /** Accepts `-- <cmd…>` (the guest argv); "required" = it must be there. */
  guestArgv?: "optional" | "required";
}

const target: PositionalSpec = {
  name: "target",
  kind: "target",
  description: "the VM: all digits = the VMM's host pid, anything else = its name",
};

const json = (what: string): FlagSpec => ({ name: "json", description: `print ${what} as one JSON document on stdout` });

const dryRun = (what: string, short?: string): FlagSpec => ({
  name: "dry-run",
  ...(short ? { short } : {}),
  description: `report what ${what} would do; change nothing`,
});

export const commands: CommandSpec[] = [
  {
    name: "boot",
    summary: "boot a microVM, run a command in it, exit with its status (or --detach)",
    positionals: [{ name: "image", optional: true, kind: "file", description: "rootfs tarball (default: the built-in base)" }],
    guestArgv: "optional",
    flags: [
      { name: "name", value: "name", description: "register the VM under this name (path-shaped allowed; not all digits)" },
      { name: "detach", aliases: ["detached"], description: "return once the VM is up and leave it running" },
      { name: "json", description: "with --detach: print {pid, name, socketPath, bootLogPath} as JSON" },
      { name: "env", value: "KEY=VALUE", repeatable: true, description: "guest environment variable" },
      { name: "cwd", value: "abs-path", description: "guest working directory" },
      { name: "memory", value: "mib", description: "guest RAM in MiB (default: half the host, 512..16384)" },
      { name: "cpus", value: "n", default: 1, description: "vCPUs" },
      { name: "cold", description: "boot from scratch instead of restoring the warm cache (which is left alone)" },
    ],
  },
  {
    name: "restore",
    summary: "resume a VM from a snapshot bundle; exit with its status (or --detach)",
    positionals: [{ name: "snap-dir", kind: "dir", description: "bundle directory written by `stasis snapshot` or `fork --out-dir`" }],
    flags: [
      { name: "name", value: "name", description: "register the VM under this name (default <source-name>/<pid>)" },
      {
        name: "image",
        value: "tar.gz",
        description: "rootfs tarball to restore on, when the bundle has no root image and the recorded one is not on this host",
      },
      { name: "detach", aliases: ["detached"], description: "return once the VM runs again and leave it running" },
      { name: "json", description: "with --detach: print {pid, name, socketPath, bootLogPath, forkedFrom} as JSON" },
    ],
  },
  {
    name: "list",
    aliases: ["ls", "ps"],
    summary: "list running VMs: PID NAME UP MEM PORTS FORKED-FROM",
    positionals: [],
    flags: [json("the registry entries (plus uptimeMs, hostRssBytes)")],
  },
  {
    name: "exec",
    summary: "run a command in a running VM; exit with its status",
    positionals: [target],
    guestArgv: "required",
    flags: [
      { name: "tty", aliases: ["pty"], description: "run under a pseudo-terminal (interactive programs, job control)" },
      { name: "env", value: "KEY=VALUE", repeatable: true, description: "environment variable for the command" },
      { name: "cwd", value: "abs-path", description: "working directory for the command (default /)" },
    ],
  },
  {
    name: "snapshot",
    summary: "freeze a running VM into a bundle directory; the VM stops unless --keep-alive",
    positionals: [target, { name: "out-dir", kind: "dir", description: "bundle directory: created; must be absent or empty" }],
    flags: [
      { name: "keep-alive", description: "keep the VM running (the bundle's TCP connections are closed, so two copies never share one)" },
      dryRun("snapshot"),
      json("{engine, snapDir, imgDir?, vmstatePath?, elapsedMs}"),
    ],
  },
  {
    name: "fork",
    summary: "branch a running VM into a sibling that continues from this instant; exit with its status (or --detach)",
    positionals: [target],
    flags: [
      { name: "new-name", value: "name", description: "the fork's name (default <source-name>/<fork-pid>)" },
      { name: "out-dir", value: "dir", description: "keep the bundle here, restorable again (default: a temporary one, removed with the fork)" },
      { name: "detach", aliases: ["detached"], description: "return once the fork runs and leave it running" },
      { name: "json", description: "with --detach: print {pid, name, socketPath, bootLogPath, forkedFrom} as JSON" },
      { name: "tcp-keep", description: "let the fork inherit live TCP connections (both copies race; rarely right)" },
    ],
  },
  {
    name: "attach",
    summary: "interactive shell in a running VM (Ctrl-D detaches; the VM keeps running)",
    positionals: [target],
    flags: [
      { name: "shell", value: "cmd", description: "command to run instead of the login shell (bash -l -i)" },
      {
        name: "tail",
        value: "N",
        optionalValue: true,
        description: "first print the detached boot log (all of it, or its last N lines)",
      },
    ],
  },
  {
    name: "repl",
    summary: "run each stdin line as its own command in a VM; exit with the last one's status",
    positionals: [target],
    flags: [],
  },
  {
    name: "stop",
    summary: "stop a VM (SIGTERM, SIGKILL after 2 s) and clean up after it",
    positionals: [target],
    flags: [
      { name: "force", short: "9", description: "SIGKILL at once" },
      dryRun("stop"),
      json("the stop result"),
    ],
  },
  {
    name: "gc",
    summary: "remove registry entries and files of VMs that are gone",
    positionals: [],
    flags: [dryRun("gc", "n"), json("the results")],
  },
  {
    name: "warm",
    summary: "list, remove or prune warm boot cache entries: warm ls | warm rm <key>... | warm rm --all | warm prune",
    positionals: [
      {
        name: "action",
        kind: "word",
        choices: ["ls", "rm", "prune"],
        description: "ls: list the entries; rm: remove entries; prune: remove leftovers, then least recently used entries down to the size bound",
      },
      {
        name: "key",
        optional: true,
        variadic: true,
        kind: "word",
        description: "with rm: an entry's key, or a prefix of it that names one entry (as many as you like)",
      },
    ],
    flags: [
      { name: "all", description: "with rm: remove every entry" },
      { name: "max-size", value: "size", description: "with prune: the bound, e.g. 4G or 512M (default: STASIS_WARM_CACHE_SIZE, else 8G)" },
      json("the entries (ls), the removals (rm) or {removed, totalBytes, maxBytes} (prune)"),
    ],
  },
  {
    name: "agent-context",
    summary: "describe this CLI (commands, flags, exit codes) as JSON",
    positionals: [],
    flags: [{ name: "json", description: "accepted for uniformity: the output is always JSON" }],
  },
  {
    name: "completion",
    summary: "print a shell completion script: eval \"$(stasis completion bash)\"",
    positionals: [{ name: "shell", kind: "word", choices: ["bash", "zsh", "fish"], description: "the shell to complete for" }],
    flags: [],
  },
];

export const globalFlags: FlagSpec[] = [
  { name: "help", short: "h", description: "show help" },
  { name: "version", short: "v", description: "print the version" },
];

/** The exit statuses, as `--help` and `agent-context` report them (cli.md §2). */
export const exitCodes: { code: number | "guest"; meaning: string }[] = [
  { code: 0, meaning: "success" },
  { code: 1, meaning: "runtime failure (any StasisError not a usage error)" },
  { code: 2, meaning: "usage error (PARSE_* codes, missing positional or guest command)" },
  {
    code: "guest",
    meaning: "exec, attach, repl (its last line) and foreground boot, restore and fork pass the guest command's exit status through",
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return commands.find((c) => c.name === name || c.aliases?.includes(name));
}
