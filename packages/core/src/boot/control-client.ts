/** One request on the VMM's JSON-lines control socket (docs/guest-contract.md). */
import net from "node:net";

export function sendControl(socketPath: string, request: object, timeoutMs = 2000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let buf = "";
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer on the control socket within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on("connect", () => sock.write(`${JSON.stringify(request)}\n`));
    sock.on("data", (c: Buffer) => {
      buf += c.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(t);
      sock.end();
      try {
        const reply = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
        if (reply.ok === true) resolve(reply);
        else reject(new Error(`control request refused: ${String(reply.error ?? "unknown error")}`));
      } catch (e) {
        reject(e as Error);
      }
    });
    sock.on("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}
