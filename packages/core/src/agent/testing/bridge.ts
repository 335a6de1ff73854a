/**
 * A stand-in for the VMM's vsock bridge (docs/agent-protocol.md §1), for
 * tests: a Unix socket that reads `CONNECT <port>\n`, asks `accept` what to
 * do, and either closes (nothing listening) or answers `OK <n>\n` and hands
 * the connection over.
 */
import net from "node:net";

/** Takes over a connection after the OK line; `head` = bytes the client sent after its CONNECT line. */
export type BridgeHandover = (client: net.Socket, head: Buffer) => void;

export interface TestBridgeOptions {
  path: string;
  /** Resolve null to refuse (close without a reply), or a handover. */
  accept: (port: number) => Promise<BridgeHandover | null> | BridgeHandover | null;
  /** Replaces the `OK <n>\n` reply (to test malformed bridges). */
  okLine?: () => Buffer;
}

export class TestBridge {
  /** CONNECT lines seen, refused ones included. */
  connects = 0;
  refused = 0;
  private readonly server: net.Server;
  private readonly clients = new Set<net.Socket>();
  private nextHostPort = 1024;

  private constructor(
    readonly path: string,
    private readonly opts: TestBridgeOptions,
  ) {
    this.server = net.createServer((c) => this.onClient(c));
  }

  static async start(opts: TestBridgeOptions): Promise<TestBridge> {
    const b = new TestBridge(opts.path, opts);
    await new Promise<void>((resolve, reject) => {
      b.server.once("error", reject);
      b.server.listen(opts.path, () => resolve());
    });
    return b;
  }

  private onClient(client: net.Socket): void {
    this.clients.add(client);
    client.on("close", () => this.clients.delete(client));
    client.on("error", () => {});
    let buf = Buffer.alloc(0);
    const onData = async (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(0x0a);
      if (nl === -1) {
        if (buf.length > 32) client.destroy();
        return;
      }
      client.off("data", onData);
      client.pause();
      const m = /^CONNECT ([0-9]{1,10})$/.exec(buf.subarray(0, nl).toString("latin1"));
      const head = buf.subarray(nl + 1);
      this.connects++;
      if (!m) return void client.destroy();
      const handover = await this.opts.accept(Number(m[1]));
      if (!handover || client.destroyed) {
        this.refused++;
        client.destroy();
        return;
      }
      client.write(this.opts.okLine ? this.opts.okLine() : `OK ${this.nextHostPort++}\n`);
      handover(client, head);
    };
    client.on("data", onData);
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A handover that pipes the connection to a Unix socket (e.g. a real `stasis-agent --listen unix:<path>`). */
export function pipeTo(agentPath: string): () => Promise<BridgeHandover | null> {
  return () =>
    new Promise((resolve) => {
      const upstream = net.createConnection({ path: agentPath });
      upstream.once("error", () => resolve(null));
      upstream.once("connect", () => {
        upstream.removeAllListeners("error");
        upstream.on("error", () => {});
        resolve((client, head) => {
          if (head.length > 0) upstream.write(head);
          client.pipe(upstream);
          upstream.pipe(client);
          client.on("close", () => upstream.destroy());
          upstream.on("close", () => client.destroy());
          client.resume();
        });
      });
    });
}
