import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { gcReport } from "./gc-format.js";
import { formatMem, formatPorts, formatTable, formatUptime, listTable, parseVmRss } from "./list-format.js";
import { quoteWord, shellQuote } from "./quote.js";
import { tailLines } from "./tail.js";

/** What `sh` makes of a command line: its words, NUL-separated by printf. */
function shWords(cmdline: string): string[] {
  const out = execFileSync("sh", ["-c", `printf '%s\\0' ${cmdline}`], { encoding: "utf8" });
  return out.split("\0").slice(0, -1);
}

describe("shell quoting", () => {
  it("round-trips any argv through sh", () => {
    const argv = ["sh", "-c", "echo out; echo err >&2; exit 4", "it's", "", "a b", "$HOME", "`id`", "*", "A=1", "~", "x\ny", "\\", "'", "\"q\"", "ünï"];
    expect(shWords(shellQuote(argv))).toEqual(argv);
  });

  it("leaves plain words alone and quotes the rest", () => {
    expect(shellQuote(["ls", "-la", "/tmp/x.txt"])).toBe("ls -la /tmp/x.txt");
    expect(quoteWord("A=1")).toBe("'A=1'");
    expect(quoteWord("")).toBe("''");
    expect(quoteWord("it's")).toBe(`'it'\\''s'`);
  });

});

describe("tailLines", () => {
  const text = Buffer.from("one\ntwo\nthree\n");
  it("returns the last N lines", () => {
    expect(tailLines(text, 1).toString()).toBe("three\n");
    expect(tailLines(text, 2).toString()).toBe("two\nthree\n");
    expect(tailLines(text, 3).toString()).toBe("one\ntwo\nthree\n");
    expect(tailLines(text, 10).toString()).toBe("one\ntwo\nthree\n");
    expect(tailLines(text, 0).toString()).toBe("");
  });
  it("copes with no final newline, empty input and blank lines", () => {
    expect(tailLines(Buffer.from("a\nb"), 1).toString()).toBe("b");
    expect(tailLines(Buffer.from(""), 3).toString()).toBe("");
    expect(tailLines(Buffer.from("a\n\n\n"), 2).toString()).toBe("\n\n");
    expect(tailLines(Buffer.from("\n"), 1).toString()).toBe("\n");
  });
});

describe("list formatting (B160)", () => {
  it("formats uptime, memory and ports", () => {
    expect(formatUptime(5_400)).toBe("5s");
    expect(formatUptime(3 * 60_000 + 5)).toBe("3m");
    expect(formatUptime(2 * 3_600_000 + 1)).toBe("2h");
    expect(formatUptime(3 * 86_400_000)).toBe("3d");
    expect(formatUptime(-5)).toBe("0s");
    expect(formatMem(150 * 1024 * 1024, 512)).toBe("150M/512M");
    expect(formatMem(null, 512)).toBe("?/512M");
    expect(formatMem(100 * 1024 * 1024, undefined)).toBe("100M/?");
    expect(formatMem(null, undefined)).toBe("?");
    expect(formatPorts(undefined)).toBe("-");
    expect(formatPorts([])).toBe("-");
    expect(formatPorts([{ hostPort: 8080, guestPort: 80 }, { hostPort: 2222, guestPort: 22, hostAddr: "127.0.0.1" }])).toBe("8080:80,2222:22");
  });

  it("aligns the table under PID NAME UP MEM PORTS FORKED-FROM", () => {
    expect(formatTable([["a", "bb"], ["ccc", "d"]])).toBe("a    bb\nccc  d\n");
    const now = 1_000_000;
    const table = listTable(
      [
        { pid: 42, name: "web", startedAt: now - 5000, memoryCeilingMib: 512, portForward: [{ hostPort: 8080, guestPort: 80 }] },
        { pid: 12345, startedAt: now - 7_200_000, forkedFrom: "/snaps/a" },
      ],
      now,
      (pid) => (pid === 42 ? 64 * 1024 * 1024 : null),
    );
    expect(table).toBe(
      [
        "PID    NAME  UP  MEM       PORTS    FORKED-FROM",
        "42     web   5s  64M/512M  8080:80  -",
        "12345  -     2h  ?         -        /snaps/a",
        "",
      ].join("\n"),
    );
    expect(listTable([], now, () => null)).toBe("PID  NAME  UP  MEM  PORTS  FORKED-FROM\n");
  });

  it("reads VmRSS from /proc/<pid>/status text", () => {
    expect(parseVmRss("Name:\tx\nVmRSS:\t   2048 kB\nThreads:\t1\n")).toBe(2048 * 1024);
    expect(parseVmRss("Name:\tkthreadd\n")).toBeNull();
  });
});

describe("gc report", () => {
  it("one line per entry, then a summary", () => {
    const r = { pid: 7, name: "w", status: "dead" as const, removedPaths: ["/a", "/b"], failedPaths: [], registryRemoved: true };
    expect(gcReport([r], false)).toEqual({ stdout: "removed 7 (w): dead, 2 paths\ngc: 1 entry removed\n", stderr: "" });
    expect(gcReport([], true).stdout).toBe("gc: nothing to clean up\n");
    const rec = { pid: 8, status: "recycled" as const, removedPaths: [], failedPaths: ["/c"], registryRemoved: true };
    const out = gcReport([r, rec], false);
    expect(out.stdout).toContain("removed 8: pid reused by another process, 0 paths\ngc: 2 entries removed\n");
    expect(out.stderr).toContain("/c");
  });
});
