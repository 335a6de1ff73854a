/**
 * The lifecycle commands as a user runs them (`node dist/bin.js …`): boot
 * --detach, list, exec (pipes and --tty), repl, attach --tail, stop, gc,
 * plus agent-context and completion. One detached VM serves the whole file
 * (a boot costs ~25 s here). The spawned CLIs inherit a private TMPDIR,
 * registry and detached-log dir.
 * B24, B30, B35, B39, B41, B43, B49, B58, B59, B61, B152, B153, B155, B158, B160.
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_MEMORY_MIB, assertKvm, runVmTests, usePrivateTmpdir, vmmProcesses } from "../../runtime/test/support/vm-env.js";

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../dist/bin.js");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function stasis(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (c) => (stdout += c));
    child.stderr!.on("data", (c) => (stderr += c));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Runs a shell command line under a real pseudo-terminal (util-linux `script`). */
function underPty(cmdline: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn("script", ["-qec", cmdline, "/dev/null"], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function sh(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function noStack(r: Run): void {
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

let restoreEnv: (() => void) | undefined;
let privateTmp = "";
beforeAll(() => {
  restoreEnv = usePrivateTmpdir();
  privateTmp = os.tmpdir();
});
afterAll(() => restoreEnv?.());

describe("lifecycle commands without a VM", () => {
  it("agent-context is one JSON document describing every command (B153, B155)", async () => {
    const r = await stasis(["agent-context"]);
    expect(r.code).toBe(0);
    const ctx = JSON.parse(r.stdout);
    expect(ctx.schemaVersion).toBe(1);
    expect(ctx.cli).toBe("stasis");
    const names = ctx.commands.map((c: { name: string }) => c.name);
    for (const c of ["boot", "list", "exec", "attach", "repl", "stop", "gc", "agent-context", "completion"]) expect(names).toContain(c);
    expect(ctx.exitCodes.map((e: { code: unknown }) => e.code)).toEqual([0, 1, 2, "guest"]);
  });

  it("completion prints a bash script that parses; an unknown shell is a usage error (B158)", async () => {
    const r = await stasis(["completion", "bash"]);
    expect(r.code).toBe(0);
    execFileSync("bash", ["-n"], { input: r.stdout });
    expect(r.stdout).toContain("stasis list --json");
    const bad = await stasis(["completion", "tcsh"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("[PARSE_FLAG_MALFORMED]");
  });

  it("empty registry: ls, gc and an unknown target (B26, B30, B43)", async () => {
    const ls = await stasis(["ls", "--json"]);
    expect(ls.code).toBe(0);
    expect(JSON.parse(ls.stdout)).toEqual([]);
    const table = await stasis(["ps"]);
    expect(table.stdout).toBe("PID  NAME  UP  MEM  PORTS  FORKED-FROM\n");
    const gc = await stasis(["gc", "-n", "--json"]);
    expect(gc.code).toBe(0);
    expect(JSON.parse(gc.stdout)).toEqual([]);
    for (const args of [["exec", "no-such-vm", "--", "true"], ["exec", "999999999", "--", "true"], ["stop", "no-such-vm"], ["attach", "no-such-vm", "--tail"]]) {
      const r = await stasis(args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toContain("[REGISTRY_VM_NOT_FOUND]");
      noStack(r);
    }
  });

  it("usage errors exit 2 (B152, B156)", async () => {
    for (const [args, code] of [
      [["boot", "--name", "1234", "--detach", "--", "true"], "PARSE_FLAG_MALFORMED"],
      [["boot", "--json", "--", "true"], "PARSE_FLAG_MALFORMED"],
      [["exec", "w"], "PARSE_FLAG_MISSING_VALUE"],
      [["exec"], "PARSE_FLAG_MISSING_VALUE"],
      [["exec", "w", "--cwd", "rel", "--", "true"], "PARSE_FLAG_MALFORMED"],
      [["attach", "w", "--tail=abc"], "PARSE_FLAG_MALFORMED"],
      [["stop", "w", "--bogus"], "PARSE_FLAG_UNKNOWN"],
      [["gc", "extra"], "PARSE_FLAG_UNKNOWN"],
    ] as const) {
      const r = await stasis([...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toContain(`[${code}]`);
      noStack(r);
    }
  });

  it("help lists the new commands and the exit statuses", async () => {
    const h = await stasis(["--help"]);
    for (const c of ["exec", "attach", "repl", "list, ls, ps", "stop", "gc", "agent-context", "completion"]) expect(h.stdout).toContain(c);
    expect(h.stdout).toContain("guest");
    const a = await stasis(["attach", "--help"]);
    expect(a.stdout).toContain("--tail [<N>]");
  });
});

describe.skipIf(!runVmTests)("lifecycle commands on a detached VM", () => {
  const name = `cli-lc-${process.pid}`;
  let identity: { pid: number; name: string; socketPath: string; bootLogPath: string };
  let stopped = false;

  beforeAll(async () => {
    assertKvm();
    const r = await stasis(["boot", "--name", name, "--detach", "--json", "--memory", String(TEST_MEMORY_MIB), "--", "sleep", "100000"]);
    if (r.code !== 0) throw new Error(`boot --detach failed (${r.code}): ${r.stderr}`);
    identity = JSON.parse(r.stdout);
  });

  afterAll(async () => {
    if (identity && !stopped) await stasis(["stop", String(identity.pid), "--force"]);
  });

  it("boot --detach --json prints the identity and returns (B33, B153)", () => {
    expect(identity.name).toBe(name);
    expect(identity.pid).toBeGreaterThan(0);
    expect(typeof identity.socketPath).toBe("string");
    expect(identity.bootLogPath).toMatch(/\.boot\.log$/);
  });

  it("ls --json and the table show it (B23, B160)", async () => {
    const r = await stasis(["ls", "--json"]);
    expect(r.code).toBe(0);
    const entries = JSON.parse(r.stdout) as { pid: number; name?: string; uptimeMs: number; hostRssBytes: number | null }[];
    const mine = entries.find((e) => e.name === name)!;
    expect(mine.pid).toBe(identity.pid);
    expect(mine.uptimeMs).toBeGreaterThanOrEqual(0);
    expect(mine.hostRssBytes).toBeGreaterThan(0);
    const table = await stasis(["list"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^PID\s+NAME\s+UP\s+MEM\s+PORTS\s+FORKED-FROM$/);
    expect(table.stdout).toMatch(new RegExp(`^${identity.pid}\\s+${name}\\s+\\d+[smhd]\\s+\\S+\\s+-\\s+-$`, "m"));
  });

  it("exec streams stdout/stderr apart and passes the status through (B49, B58)", async () => {
    const r = await stasis(["exec", name, "--", "sh", "-c", "echo out; echo err >&2; exit 4"]);
    expect(r.stdout).toBe("out\n");
    expect(r.stderr).toBe("err\n");
    expect(r.code).toBe(4);
  });

  it("exec forwards piped stdin, --env and --cwd; targets by pid (B30)", async () => {
    expect((await stasis(["exec", name, "--", "cat"], "data\n")).stdout).toBe("data\n");
    const env = await stasis(["exec", name, "--env", "A=x y", "--cwd", "/tmp", "--", "sh", "-c", 'echo "$A"; pwd']);
    expect(env.stdout).toBe("x y\n/tmp\n");
    const byPid = await stasis(["exec", String(identity.pid), "--", "true"]);
    expect(byPid.code).toBe(0);
    const quoted = await stasis(["exec", name, "--", "printf", "%s|", "it's", "$HOME", "a b"]);
    expect(quoted.stdout).toBe("it's|$HOME|a b|");
  });

  it("repl runs each line on its own: cd does not carry over (B61)", async () => {
    const r = await stasis(["repl", name], "cd /tmp\n\npwd\nexit 3\n");
    expect(r.stdout).toBe("/\n");
    expect(r.code).toBe(3);
    const last = await stasis(["repl", name], "false\ntrue\n");
    expect(last.code).toBe(0);
  });

  it("attach --tail prints the detached boot log (B35)", async () => {
    const log = readFileSync(identity.bootLogPath, "utf8");
    const r = await stasis(["attach", name, "--tail"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(log);
    const one = await stasis(["attach", name, "--tail", "1"]);
    expect(one.code).toBe(0);
    expect(log.endsWith(one.stdout)).toBe(true);
    expect(one.stdout.replace(/\n$/, "")).not.toContain("\n");
  });

  it("exec --tty runs under a pty of the host terminal's size (B59)", async () => {
    const cli = `${sh(process.execPath)} ${sh(bin)}`;
    const r = await underPty(`stty cols 100 rows 30; ${cli} exec --tty ${sh(name)} -- sh -c 'stty size; tty'`);
    expect(r.stdout).toContain("30 100");
    expect(r.stdout).not.toContain("not a tty");
    expect(r.code).toBe(0);
    const status = await underPty(`${cli} exec --pty ${sh(name)} -- sh -c 'exit 5'`);
    expect(status.code).toBe(5);
    // Without a terminal on stdin --tty still works, at 80x24.
    const plain = await stasis(["exec", "--tty", name, "--", "stty", "size"]);
    expect(plain.stdout).toContain("24 80");
    expect(plain.code).toBe(0);
  });

  it("a second boot with the same name is refused (B24)", async () => {
    const r = await stasis(["boot", "--name", name, "--detach", "--memory", String(TEST_MEMORY_MIB), "--", "true"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("[REGISTRY_NAME_IN_USE]");
    noStack(r);
  });

  it("stop --dry-run changes nothing; stop SIGTERMs and cleans up; gc finds nothing (B39, B41, B43, B154)", async () => {
    const registry = process.env.STASIS_REGISTRY_DIR!;
    const before = readdirSync(registry).sort();
    const dry = await stasis(["stop", name, "--dry-run", "--json"]);
    expect(dry.code).toBe(0);
    const dryResult = JSON.parse(dry.stdout);
    expect(dryResult).toMatchObject({ pid: identity.pid, dryRun: true });
    expect(readdirSync(registry).sort()).toEqual(before);
    expect(JSON.parse((await stasis(["ls", "--json"])).stdout).map((e: { pid: number }) => e.pid)).toContain(identity.pid);

    const r = await stasis(["stop", name, "--json"]);
    expect(r.code).toBe(0);
    stopped = true;
    expect(JSON.parse(r.stdout)).toMatchObject({ pid: identity.pid, name, signal: "SIGTERM", dryRun: false });
    const after = JSON.parse((await stasis(["ls", "--json"])).stdout) as { pid: number }[];
    expect(after.map((e) => e.pid)).not.toContain(identity.pid);
    const gc = await stasis(["gc", "--dry-run", "--json"]);
    expect(JSON.parse(gc.stdout)).toEqual([]);
    expect(vmmProcesses(privateTmp)).toEqual([]);
  });
});
