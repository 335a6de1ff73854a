/**
 * An interactive pty session on a VM (`exec --tty`, `attach`): the host
 * terminal goes raw for the session (so Ctrl-C, Ctrl-Z reach the guest) and
 * is restored on every way out; window changes (SIGWINCH) are forwarded.
 */
import os from "node:os";
import type { VmHandle } from "@stasis/runtime";

const FALLBACK = { cols: 80, rows: 24 };
const FORWARDED: NodeJS.Signals[] = ["SIGTERM", "SIGHUP", "SIGQUIT"];

/** The host terminal size (from stdout), or 80x24 when stdout is no terminal. */
export function terminalSize(): { cols: number; rows: number } {
  const out = process.stdout;
  if (out.isTTY && out.columns > 0 && out.rows > 0) return { cols: out.columns, rows: out.rows };
  return FALLBACK;
}

/** Runs `cmd` ("" = the guest's interactive login shell) under a pty; resolves with its exit status. */
export async function runPtySession(vm: VmHandle, cmd: string, opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<number> {
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    if (raw) {
      try {
        stdin.setRawMode(false);
      } catch {
        // the terminal is gone (hangup): nothing to restore
      }
    }
  };
  // Last resort for exits that bypass the finally below (process.exit elsewhere).
  process.once("exit", restore);

  let signalled: NodeJS.Signals | undefined;
  let session: ReturnType<VmHandle["execPty"]> | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    signalled ??= signal;
    restore();
    session?.cancel();
  };
  const onWinch = () => {
    const { cols, rows } = terminalSize();
    session?.resize(cols, rows);
  };
  for (const s of FORWARDED) process.on(s, onSignal);
  // Without a raw terminal, Ctrl-C reaches us as SIGINT: end the remote command too.
  if (!raw) process.on("SIGINT", onSignal);
  // SIGWINCH: Node refreshes stdout's size, then emits "resize".
  process.stdout.on("resize", onWinch);
  try {
    if (raw) stdin.setRawMode(true);
    const { cols, rows } = terminalSize();
    session = vm.execPty(cmd, {
      cols,
      rows,
      stdin,
      stdout: process.stdout,
      ...(opts.env && Object.keys(opts.env).length > 0 ? { env: opts.env } : {}),
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
    const result = await session.result.catch((e: unknown) => {
      if (signalled) return undefined; // cancelled by us: the signal decides the status
      throw e;
    });
    if (signalled || !result) return 128 + (os.constants.signals[signalled ?? "SIGTERM"] ?? 0);
    return result.exitCode;
  } finally {
    restore();
    process.off("exit", restore);
    for (const s of FORWARDED) process.off(s, onSignal);
    process.off("SIGINT", onSignal);
    process.stdout.off("resize", onWinch);
    stdin.pause();
  }
}
