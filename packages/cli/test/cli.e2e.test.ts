/**
 * The CLI as a user runs it: `node dist/bin.js …` (what `pnpm stasis` runs).
 * Usage errors need no VM; the boot tests run real VMs (B2, B5, B7, B9, B152).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { TEST_MEMORY_MIB, assertKvm, makeUserTarball, runVmTests } from "../../runtime/test/support/vm-env.js";

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../dist/bin.js");

function stasis(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("stasis CLI without a VM", () => {
  it("--version and --help", async () => {
    const v = await stasis(["--version"]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^stasis \d+\.\d+\.\d+\n$/);
    const h = await stasis(["--help"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain("boot");
    const bh = await stasis(["boot", "--help"]);
    expect(bh.stdout).toContain("--env <KEY=VALUE>");
  });

  it("usage errors exit 2 with the code and no stack trace (B152, B156)", async () => {
    for (const [args, code] of [
      [["boot", "--bogus"], "PARSE_FLAG_UNKNOWN"],
      [["boot", "--env", "FOO", "--", "true"], "PARSE_FLAG_MALFORMED"],
      [["boot", "--memory", "1G", "--", "true"], "PARSE_FLAG_MALFORMED"],
      [["frobnicate"], "PARSE_FLAG_UNKNOWN"],
    ] as const) {
      const r = await stasis([...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toContain(`[${code}]`);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it("runtime errors exit 1 with the code (B4, B7, B8)", async () => {
    for (const [args, code] of [
      [["boot"], "BOOT_CMD_MISSING"],
      [["boot", "/nonexistent.tar.gz", "--", "true"], "BOOT_IMAGE_NOT_FOUND"],
      [["boot", "--cwd", "relative", "--", "true"], "BOOT_CWD_INVALID"],
      [["boot", "--memory", "0", "--", "true"], "BOOT_MEMORY_INVALID"],
    ] as const) {
      const r = await stasis([...args]);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toContain(`[${code}]`);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe.skipIf(!runVmTests)("stasis boot on KVM", () => {
  const tarball = runVmTests ? makeUserTarball("cli-marker") : "";
  afterAll(() => tarball && rmSync(path.dirname(tarball), { recursive: true, force: true }));

  it("boots the base with no image and passes the exit status through (B2, B5)", async () => {
    assertKvm();
    const r = await stasis(["boot", "--memory", String(TEST_MEMORY_MIB), "--", "sh", "-c", "echo hello; exit 3"]);
    expect(r.stdout).toBe("hello\n");
    expect(r.code).toBe(3);
  });

  it("the first boot fills the warm cache, the next restores it, --cold leaves it alone; warm ls and rm --all (W1, W4)", async () => {
    assertKvm();
    const env = { STASIS_WARM_DIR: mkdtempSync(path.join(os.tmpdir(), "cli-warm-")) };
    const ls = async () => JSON.parse((await stasis(["warm", "ls", "--json"], env)).stdout) as { key: string; lastUsedAt: string }[];
    try {
      const boots = ["--memory", String(TEST_MEMORY_MIB)];
      const first = await stasis(["boot", ...boots, "--", "sh", "-c", "echo one"], env);
      expect(first.stdout).toBe("one\n");
      const [entry] = await ls();
      expect(entry).toBeDefined();
      const second = await stasis(["boot", ...boots, "--", "sh", "-c", "echo two; exit 5"], env);
      expect(second.stdout).toBe("two\n");
      expect(second.code).toBe(5);
      const afterWarm = await ls();
      expect(afterWarm.map((e) => e.key)).toEqual([entry!.key]);
      expect(Date.parse(afterWarm[0]!.lastUsedAt)).toBeGreaterThan(Date.parse(entry!.lastUsedAt));
      const cold = await stasis(["boot", "--cold", ...boots, "--", "sh", "-c", "echo three"], env);
      expect(cold.stdout).toBe("three\n");
      // Same entry, not used: (its size may move a little, it shares the root image's inode with the rootfs cache)
      const used = (es: { key: string; lastUsedAt: string }[]) => es.map((e) => [e.key, e.lastUsedAt]);
      expect(used(await ls())).toEqual(used(afterWarm));
      const rm = await stasis(["warm", "rm", "--all", "--json"], env);
      expect(rm.code).toBe(0);
      expect(JSON.parse(rm.stdout)).toHaveLength(1);
      expect(await ls()).toEqual([]);
    } finally {
      rmSync(env.STASIS_WARM_DIR, { recursive: true, force: true });
    }
  });

  it("boots a user tarball with --env and --cwd (B7, B9)", async () => {
    assertKvm();
    const r = await stasis([
      "boot", tarball, "--env", "A=1", "--cwd", "/tmp", "--memory", String(TEST_MEMORY_MIB),
      "--", "sh", "-c", "echo $A; pwd; cat /marker",
    ]);
    expect(r.stdout).toBe("1\n/tmp\ncli-marker\n");
    expect(r.code).toBe(0);
  });
});
