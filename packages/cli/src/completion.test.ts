import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bashCompletion, completionScript, fishCompletion, zshCompletion } from "./completion.js";
import { jsonText } from "./lib/json.js";
import { commands } from "./parse/schema.js";

function has(bin: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0;
}

const dir = mkdtempSync(path.join(os.tmpdir(), "stasis-completion-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What `stasis list --json` prints for two VMs (same formatting as the CLI). */
const listJson = jsonText([
  { pid: 101, name: "web", socketPath: "/s/1", startedAt: 1, liveMounts: [{ guest: "/mnt", host: "/h", mode: "rw" }], uptimeMs: 5, hostRssBytes: null },
  { pid: 102, socketPath: "/s/2", startedAt: 2, uptimeMs: 4, hostRssBytes: 1 },
  { pid: 103, name: "team/api", socketPath: "/s/3", startedAt: 3, uptimeMs: 3, hostRssBytes: 1 },
]);
const listFile = path.join(dir, "list.json");
writeFileSync(listFile, listJson);

/** Runs the bash completion function on a command line (cursor at its end). */
function bashComplete(line: string): string[] {
  const scriptFile = path.join(dir, "stasis.bash");
  writeFileSync(scriptFile, bashCompletion());
  const driver = [
    `stasis() { if [ "$1 $2" = "list --json" ]; then cat ${JSON.stringify(listFile)}; fi; }`,
    `source ${JSON.stringify(scriptFile)}`,
    `COMP_LINE="$1"; COMP_POINT=\${#COMP_LINE}`,
    `_stasis`,
    `printf '%s\\n' "\${COMPREPLY[@]}"`,
  ].join("\n");
  const out = execFileSync("bash", ["-c", driver, "driver", line], { encoding: "utf8" });
  return out.split("\n").filter((l) => l !== "");
}

describe("completion scripts (B158)", () => {
  it("bash: valid syntax, every command", () => {
    const script = completionScript("bash");
    execFileSync("bash", ["-n"], { input: script });
    for (const c of commands) expect(script).toContain(c.name);
  });

  it("bash: completes commands, flags per command, choices and live VM names", () => {
    const all = bashComplete("stasis ");
    for (const c of commands) expect(all).toContain(c.name);
    expect(all).toEqual(expect.arrayContaining(["ls", "ps", "--help", "--version"]));
    expect(bashComplete("stasis ex")).toEqual(["exec"]);
    expect(bashComplete("stasis exec ")).toEqual(["web", "team/api"]);
    expect(bashComplete("stasis exec w")).toEqual(["web"]);
    expect(bashComplete("stasis --help exec te")).toEqual(["team/api"]);
    expect(bashComplete("stasis exec --env A=1 --cwd /x ")).toEqual(["web", "team/api"]);
    expect(bashComplete("stasis exec --tty ")).toEqual(["web", "team/api"]);
    expect(bashComplete("stasis attach --tail ")).toEqual(["web", "team/api"]);
    expect(bashComplete("stasis exec web ")).toEqual([]);
    expect(bashComplete("stasis exec web -- ")).toEqual([]);
    expect(bashComplete("stasis exec web -- --")).toEqual([]);
    expect(bashComplete("stasis exec web --").sort()).toEqual(["--cwd", "--env", "--pty", "--tty"]);
    expect(bashComplete("stasis stop web -")).toEqual(expect.arrayContaining(["--force", "-9", "--dry-run", "--json"]));
    expect(bashComplete("stasis ls --")).toEqual(["--json"]);
    expect(bashComplete("stasis gc -")).toEqual(["--dry-run", "-n", "--json"]);
    expect(bashComplete("stasis completion ")).toEqual(["bash", "zsh", "fish"]);
    expect(bashComplete("stasis completion z")).toEqual(["zsh"]);
    expect(bashComplete("stasis boot --name ")).toEqual([]);
    expect(bashComplete("stasis warm ")).toEqual(["ls", "rm", "prune"]);
    expect(bashComplete("stasis warm rm -")).toEqual(["--all", "--max-size", "--json"]);
    expect(bashComplete("stasis warm prune --max-size ")).toEqual([]);
  });

  it.skipIf(!has("zsh"))("zsh: valid syntax; completes commands, flags, choices and VM names", () => {
    const script = zshCompletion();
    execFileSync("zsh", ["-n"], { input: script });
    const file = path.join(dir, "stasis.zsh");
    writeFileSync(file, script);
    // The completion builtins stubbed to print what they are offered.
    const driver = [
      `compadd() { if [[ $1 == -a ]]; then print -rl -- \${(P)2}; else shift; print -rl -- "$@"; fi }`,
      `_describe() { print -rl -- \${(P)2} }`,
      `_files() { print -r -- _files }`,
      `compdef() { }`,
      `stasis() { if [[ "$1 $2" == "list --json" ]]; then cat ${JSON.stringify(listFile)}; fi }`,
      `source ${JSON.stringify(file)}`,
      `words=(\${(z)1})`,
      `[[ $1 == *" " ]] && words+=("")`,
      `CURRENT=\${#words}`,
      `_stasis`,
    ].join("\n");
    const complete = (line: string) =>
      execFileSync("zsh", ["-f", "-c", driver, "driver", line], { encoding: "utf8" }).split("\n").filter((l) => l !== "");
    expect(complete("stasis ")).toEqual(expect.arrayContaining(["exec:run a command in a running VM; exit with its status", "ls:list running VMs\\: PID NAME UP MEM PORTS FORKED-FROM"]));
    expect(complete("stasis -")).toEqual(["--help", "-h", "--version", "-v"]);
    expect(complete("stasis exec ")).toEqual(["web", "team/api"]);
    expect(complete("stasis exec --env A=1 ")).toEqual(["web", "team/api"]);
    expect(complete("stasis exec web --")).toEqual(["--tty", "--pty", "--env", "--cwd"]);
    expect(complete("stasis exec web -- ")).toEqual(["_files"]);
    expect(complete("stasis boot ")).toEqual(["_files"]);
    expect(complete("stasis completion ")).toEqual(["bash", "zsh", "fish"]);
  });

  it.skipIf(!has("fish"))("fish: valid syntax; completes commands, flags, choices and VM names", () => {
    const file = path.join(dir, "stasis.fish");
    writeFileSync(file, fishCompletion());
    execFileSync("fish", ["--no-execute", file]);
    const driver = [
      `function stasis; if test "$argv[1] $argv[2]" = "list --json"; cat ${JSON.stringify(listFile)}; end; end`,
      `source ${JSON.stringify(file)}`,
      `complete -C "$argv[1]"`,
    ].join("\n");
    const complete = (line: string) =>
      execFileSync("fish", ["--no-config", "-c", driver, line], { encoding: "utf8" })
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => l.split("\t")[0]!);
    expect(complete("stasis ")).toEqual(expect.arrayContaining(commands.map((c) => c.name)));
    expect(complete("stasis exec ")).toEqual(["team/api", "web"]);
    expect(complete("stasis exec --env A=1 ")).toEqual(["team/api", "web"]);
    expect(complete("stasis exec web --")).toEqual(expect.arrayContaining(["--tty", "--pty", "--env", "--cwd"]));
    expect(complete("stasis stop web -")).toEqual(expect.arrayContaining(["-9", "--force", "--dry-run", "--json"]));
    expect(complete("stasis completion ")).toEqual(["bash", "fish", "zsh"]);
  });

  it("zsh and fish scripts cover every command and flag", () => {
    for (const script of [zshCompletion(), fishCompletion()]) {
      for (const c of commands) {
        expect(script).toContain(c.name);
        for (const f of c.flags) expect(script).toContain(f.name);
      }
      expect(script).toContain("stasis list --json");
    }
  });
});
