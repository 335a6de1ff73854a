/**
 * Name reservations ("pins"): `<root>/.names/<encoded name>.json`, created
 * with O_EXCL so two boots cannot both take a name. A pin whose owner is
 * gone (dead or recycled pid) no longer holds the name.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ErrorCode, RegistryError } from "../errors/index.js";
import { writeFileAtomic } from "./atomic-write.js";
import { namesDir, registryRoot } from "./paths.js";
import { isRunning, validatePid } from "./process-identity.js";

interface Pin {
  name: string;
  /** While booting: the booting process; afterwards the VMM. */
  pid: number;
  vmmExe?: string;
  startTicks?: number;
}

const MAX_NAME = 255;

/** Names are path-shaped strings (`a/b/c`); all-digit names would read as pids. */
export function checkName(name: unknown): string {
  const bad = (why: string) =>
    new RegistryError(ErrorCode.REGISTRY_NAME_INVALID, `VM name ${JSON.stringify(name)} is invalid: ${why}`);
  if (typeof name !== "string" || name.length === 0) throw bad("it must be a non-empty string");
  if (name.length > MAX_NAME) throw bad(`it is longer than ${MAX_NAME} characters`);
  if (/^\d+$/.test(name)) throw bad("an all-digit name would be taken for a pid; add a letter");
  if (/[\0\n\r\t ]/.test(name)) throw bad("it must not contain spaces, tabs, newlines or NUL");
  if (name.startsWith("/") || name.endsWith("/") || name.split("/").some((s) => s === "" || s === "." || s === "..")) {
    throw bad("use path-shaped segments like a/b/c, without empty, . or .. segments");
  }
  return name;
}

function pinFile(name: string, root: string): string {
  const enc = encodeURIComponent(name);
  const base = enc.length <= 200 ? enc : createHash("sha256").update(name).digest("hex");
  return path.join(namesDir(root), `${base}.json`);
}

function readPin(file: string): Pin | undefined {
  try {
    const p = JSON.parse(readFileSync(file, "utf8")) as Pin;
    return typeof p.name === "string" && Number.isInteger(p.pid) ? p : undefined;
  } catch {
    return undefined;
  }
}

function pinHeld(p: Pin): boolean {
  return p.vmmExe === undefined ? isRunning(p.pid) : validatePid(p.pid, { vmmExe: p.vmmExe, startTicks: p.startTicks }) === "alive";
}

/** Takes `name` for the calling process, or throws REGISTRY_NAME_IN_USE. */
export function reserveName(name: string, root = registryRoot()): void {
  mkdirSync(namesDir(root), { recursive: true, mode: 0o700 });
  const file = pinFile(name, root);
  const pin: Pin = { name, pid: process.pid };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(pin), { flag: "wx", mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = readPin(file);
    if (holder && pinHeld(holder)) {
      throw new RegistryError(
        ErrorCode.REGISTRY_NAME_IN_USE,
        `the name ${JSON.stringify(name)} is held by the running VM ${holder.pid}: pick another name, or stop it first (stasis stop ${name})`,
      );
    }
    rmSync(file, { force: true }); // stale: its owner is gone
  }
  throw new RegistryError(ErrorCode.REGISTRY_NAME_IN_USE, `could not reserve the name ${JSON.stringify(name)}: it keeps being taken`);
}

/** Hands a reservation over to the VMM that now holds the name. */
export function pinNameToVmm(name: string, vmm: { pid: number; vmmExe?: string; startTicks?: number }, root = registryRoot()): void {
  writeFileAtomic(pinFile(name, root), JSON.stringify({ name, ...vmm } satisfies Pin));
}

/** Drops the reservation of `name` if `pid` (the VMM or the booting process) holds it. */
export function releaseName(name: string, pid: number, root = registryRoot()): void {
  const file = pinFile(name, root);
  const p = readPin(file);
  if (p && (p.pid === pid || p.pid === process.pid)) rmSync(file, { force: true });
}

/** An unreadable pin younger than a few seconds may be mid-creation (O_EXCL, then write). */
function isBeingWritten(file: string): boolean {
  try {
    return Date.now() - statSync(file).mtimeMs < 5000;
  } catch {
    return true;
  }
}

/** Removes reservations whose owner is gone. */
export function pruneNames(root = registryRoot()): void {
  let files: string[];
  try {
    files = readdirSync(namesDir(root));
  } catch {
    return;
  }
  for (const f of files) {
    const file = path.join(namesDir(root), f);
    const p = readPin(file);
    if (p ? !pinHeld(p) : !isBeingWritten(file)) rmSync(file, { force: true });
  }
}
