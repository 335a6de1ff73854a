/**
 * Turning a finished fill into the entry for its key, by one rename. Two
 * processes may fill the same key at once: the first rename wins, the
 * second finds the key taken (EEXIST/ENOTEMPTY), removes its own fill and
 * reports "lost". The winner's entry is never written to.
 */
import { closeSync, openSync, renameSync, statSync } from "node:fs";
import path from "node:path";
import { removeTree } from "./discard.js";
import { WARM_FORMAT, describeInputs, type WarmInputs } from "./key.js";
import { LAST_USED_FILE, STATE_FILE, checkKey, warmRoot } from "./paths.js";
import { writeRecord } from "./record.js";

export type PublishOutcome = "published" | "lost";

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Publishes `fillDir` (a finished snapshot bundle, normally at
 * fillPath(key)) as the entry for `key`: writes warm.json and last-used into
 * it, then renames it to `<root>/<key>`. "lost" when another process
 * published the key first (or something else holds the name): `fillDir` is
 * removed and the existing entry left alone. Throws when `fillDir` holds no
 * state.vmstate (not a finished snapshot) — it is left for the caller.
 */
export function publishWarm(key: string, fillDir: string, inputs: WarmInputs, root = warmRoot()): PublishOutcome {
  const target = path.join(root, checkKey(key));
  if (path.dirname(path.resolve(fillDir)) !== root) {
    throw new TypeError(`publishWarm: ${fillDir} must be directly in ${root} (see fillPath) so that publishing is one rename`);
  }
  try {
    if (!statSync(path.join(fillDir, STATE_FILE)).isFile()) throw new Error("not a file");
  } catch (err) {
    throw new Error(`publishWarm: ${fillDir} holds no ${STATE_FILE}: not a finished snapshot`, { cause: err });
  }
  writeRecord(fillDir, { format: WARM_FORMAT, key, createdAt: new Date().toISOString(), inputs: describeInputs(inputs, root) });
  closeSync(openSync(path.join(fillDir, LAST_USED_FILE), "w"));
  try {
    renameSync(fillDir, target);
    return "published";
  } catch (err) {
    const code = errno(err);
    // EEXIST/ENOTEMPTY: the key is taken; ENOTDIR: a stray file holds the name (lookup discards it).
    if (code !== "EEXIST" && code !== "ENOTEMPTY" && code !== "ENOTDIR") throw err;
  }
  removeTree(fillDir);
  return "lost";
}
