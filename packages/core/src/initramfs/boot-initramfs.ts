/**
 * The tiny per-boot initramfs: our static /init, the boot config it reads,
 * a console node and /tmp. The root filesystem itself comes from a disk.
 */
import { readFileSync } from "node:fs";
import { ErrorCode, MkinitramfsError } from "../errors/index.js";
import { buildCpio } from "./cpio.js";

/**
 * /stasis-config.json, as docs/guest-contract.md describes it. Without the
 * workload (cmd, env, cwd) /init brings the machine up and waits for the
 * host's `start`.
 */
export interface GuestBootConfig {
  cmd?: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Root image device (read-only); absent = run inside the initramfs. */
  root?: string;
  /** Writable layer device; absent = tmpfs. */
  upper?: string;
}

function readBinary(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (cause) {
    throw new MkinitramfsError(ErrorCode.MKINITRAMFS_INIT_MISSING, `cannot read the guest ${what} at ${file}`, { cause });
  }
}

/**
 * `agentPath`: the guest agent, started by /init as `/stasis-agent`; without
 * it the VM runs its command but cannot be exec'd into.
 */
export function buildBootInitramfs(initPath: string, config: GuestBootConfig, bootEpochMs = Date.now(), agentPath?: string): Buffer {
  return buildCpio([
    { kind: "file", path: "/init", data: readBinary(initPath, "/init"), mode: 0o755 },
    ...(agentPath ? [{ kind: "file" as const, path: "/stasis-agent", data: readBinary(agentPath, "agent"), mode: 0o755 }] : []),
    { kind: "file", path: "/stasis-config.json", data: Buffer.from(`${JSON.stringify(config)}\n`) },
    { kind: "dir", path: "/etc" },
    { kind: "file", path: "/etc/stasis-boot-epoch", data: Buffer.from(`${Math.floor(bootEpochMs / 1000)}\n`) },
    { kind: "dir", path: "/dev" },
    { kind: "chardev", path: "/dev/console", major: 5, minor: 1, mode: 0o600 },
    { kind: "dir", path: "/tmp", mode: 0o1777 },
  ]);
}
