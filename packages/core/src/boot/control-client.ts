/** One request on the VMM's JSON-lines control socket (docs/guest-contract.md, docs/vmstate.md). */
import net from "node:net";

/** The control socket gave no answer in time (the VMM may be stuck, not merely slow). */
export class ControlTimeoutError extends Error {}

/**
 * Sends one request and resolves with the VMM's reply object, whatever its
 * `ok`. Rejects only when no reply arrives: a connect error, the VMM
 * closing the connection first (it died), a garbled line, or a
 * ControlTimeoutError after `timeoutMs` (null = wait for ever).
 */
export function requestControl(socketPath: string, request: object, timeoutMs: number | null = 2000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let buf = "";
    let settled = false;
    const settle = (err: Error | undefined, reply?: Record<string, unknown>) => {
      if (settled) return;
      settled = true;
      if (t) clearTimeout(t);
      sock.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    const t =
      timeoutMs === null
        ? undefined
        : setTimeout(() => settle(new ControlTimeoutError(`no answer on the control socket within ${timeoutMs} ms`)), timeoutMs);
    sock.on("connect", () => sock.write(`${JSON.stringify(request)}\n`));
    sock.on("data", (c: Buffer) => {
      buf += c.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      try {
        const reply: unknown = JSON.parse(buf.slice(0, nl));
        if (reply === null || typeof reply !== "object") throw new Error("the control reply is not a JSON object");
        settle(undefined, reply as Record<string, unknown>);
      } catch (e) {
        settle(e as Error);
      }
    });
    sock.on("error", (e) => settle(e));
    sock.on("close", () => settle(new Error("the VMM closed the control connection without answering")));
  });
}

/** As requestControl, but a reply without `ok: true` rejects with the VMM's error text. */
export async function sendControl(socketPath: string, request: object, timeoutMs = 2000): Promise<Record<string, unknown>> {
  const reply = await requestControl(socketPath, request, timeoutMs);
  if (reply.ok !== true) throw new Error(`control request refused: ${String(reply.error ?? "unknown error")}`);
  return reply;
}
