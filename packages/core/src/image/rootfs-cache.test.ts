import { spawnSync } from "node:child_process";
import { linkSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureRootfsImage } from "./rootfs-cache.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "stasis-rootfs-cache-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function tinyTarball(): string {
  const tree = path.join(tmp, "tree");
  mkdirSync(path.join(tree, "etc"), { recursive: true });
  writeFileSync(path.join(tree, "etc", "hello"), "hi\n");
  const tar = path.join(tmp, "tiny.tar.gz");
  expect(spawnSync("tar", ["-czf", tar, "-C", tree, "."]).status).toBe(0);
  return tar;
}

describe("ensureRootfsImage", () => {
  it("grows a cached image as a new file, so a hard link to it (a snapshot bundle's rootfs.img) keeps its size", () => {
    const cacheDir = path.join(tmp, "cache");
    const tar = tinyTarball();
    const img = ensureRootfsImage(tar, { cacheDir, minSizeBytes: 64 << 20 });
    expect(ensureRootfsImage(tar, { cacheDir, minSizeBytes: 64 << 20 })).toBe(img);
    const bundleCopy = path.join(tmp, "rootfs.img");
    linkSync(img, bundleCopy);
    const before = statSync(bundleCopy).size;

    const grown = ensureRootfsImage(tar, { cacheDir, sizeBytes: before + (32 << 20) });
    expect(grown).toBe(img);
    expect(statSync(img).size).toBe(before + (32 << 20));
    expect(statSync(bundleCopy).size).toBe(before);
    expect(statSync(bundleCopy).ino).not.toBe(statSync(img).ino);
  });
});
