import os from "node:os";
import path from "node:path";

/** `~/.cache/stasis`, honouring XDG_CACHE_HOME. */
export function cacheRoot(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), ".cache"), "stasis");
}
