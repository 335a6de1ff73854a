/**
 * Where the warm cache lives and what its names mean. Everything sits
 * directly under the root:
 *
 *   <key>/                       an entry (32 hex digits)
 *   .fill-<key>-<pid>-<n>            a fill in progress (plus the snapshot
 *   ..fill-<key>-<pid>-<n>.partial-* engine's staging leftovers beside it)
 *   .trash-<name>-<pid>-<rand>   a removal in progress
 *   .claim-<key>                 a boot filling <key> (fill-claim.ts)
 *   .hashes/                     the sha256 memo of the key's input files
 *
 * Any other name is ignored.
 */
import { mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** `STASIS_WARM_DIR` (resolved), else `~/.stasis/warm`. */
export function warmRoot(): string {
  const fromEnv = process.env.STASIS_WARM_DIR;
  return fromEnv ? path.resolve(fromEnv) : path.join(os.homedir(), ".stasis", "warm");
}

/** A key: the first 32 hex digits of a sha256. */
export const KEY_RE = /^[0-9a-f]{32}$/;

export function isWarmKey(value: unknown): value is string {
  return typeof value === "string" && KEY_RE.test(value);
}

/** Throws a TypeError unless `key` is a key (keys become paths: nothing else may). */
export function checkKey(key: unknown): string {
  if (!isWarmKey(key)) throw new TypeError(`a warm cache key is 32 lowercase hex digits, got ${JSON.stringify(key)}`);
  return key;
}

/** The files of an entry besides the snapshot bundle's own. */
export const RECORD_FILE = "warm.json";
export const LAST_USED_FILE = "last-used";
/** The bundle file without which an entry cannot be restored. */
export const STATE_FILE = "state.vmstate";

export const MEMO_DIR = ".hashes";

/** `<root>/<key>`. */
export function warmEntryDir(key: string, root = warmRoot()): string {
  return path.join(root, checkKey(key));
}

/** Fills this process has started: part of each fill's name, so two fills of one key in one process never meet. */
let fillsStarted = 0;

/**
 * A fresh place to fill the entry for `key`: `<root>/.fill-<key>-<pid>-<n>`.
 * Its parent, the root, is created here; the path itself is left for the
 * snapshot engine to create.
 */
export function fillPath(key: string, root = warmRoot()): string {
  checkKey(key);
  mkdirSync(root, { recursive: true });
  return path.join(root, `.fill-${key}-${process.pid}-${++fillsStarted}`);
}

/**
 * A fill directory or what a writer left beside it: `.fill-<key>-<pid>-<n>`,
 * `.fill-<key>-<pid>-<n>.partial-…` (the VMM's own staging) and
 * `..fill-<key>-<pid>-<n>.partial-…` (the snapshot engine's, see stagingPathFor).
 */
const FILL_RE = /^\.{1,2}fill-([0-9a-f]{32})-(\d+)(?:-\d+)?(?:\..*)?$/;

export function parseFillName(name: string): { key: string; pid: number } | undefined {
  const m = FILL_RE.exec(name);
  return m ? { key: m[1]!, pid: Number(m[2]) } : undefined;
}

export const TRASH_PREFIX = ".trash-";

export const CLAIM_PREFIX = ".claim-";

/** The key a `.claim-<key>` file claims. */
export function parseClaimName(name: string): string | undefined {
  if (!name.startsWith(CLAIM_PREFIX)) return undefined;
  const key = name.slice(CLAIM_PREFIX.length);
  return isWarmKey(key) ? key : undefined;
}

/** The name of whatever a `.trash-<name>-<pid>-<rand>` was, when it was an entry or a fill. */
export function parseTrashName(name: string): string | undefined {
  if (!name.startsWith(TRASH_PREFIX)) return undefined;
  const m = /^(.*)-\d+-[0-9a-f]+$/.exec(name.slice(TRASH_PREFIX.length));
  return m ? m[1] : name.slice(TRASH_PREFIX.length);
}
