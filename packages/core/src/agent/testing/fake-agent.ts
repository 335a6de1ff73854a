/**
 * An in-process fake of the guest agent behind a fake vsock bridge, for
 * tests. By default it behaves like the real agent but on the host: `exec`
 * runs `/bin/sh -c` (so host `tar`, `cat`, … work), `write`/`read` use host
 * paths. `behaviour` replaces that per test with a script.
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import type net from "node:net";
import os from "node:os";
import path from "node:path";
import { AGENT_PORT } from "../bridge.js";
import { FrameDecoder, HOST_FRAME_TYPES, encodeFrame, frameHeader, payloadChunks, type FrameType } from "../frames.js";
import { TestBridge } from "./bridge.js";

export type Behaviour = (s: FakeSession) => void | Promise<void>;

/** One connection as the agent sees it. */
export class FakeSession {
  request: Record<string, unknown> = {};
  /** Every `I` payload, in order (the empty end-of-input one included). */
  readonly inputs: Buffer[] = [];
  readonly winsizes: Array<[number, number]> = [];
  readonly signals: number[] = [];
  /** Resolves when the host side has closed or the connection broke. */
  readonly closed: Promise<void>;
  hostClosed = false;
  private inputListener: ((data: Buffer) => void) | undefined;
  private inputEnd: (() => void) | undefined;
  private winsizeListener: ((cols: number, rows: number) => void) | undefined;

  constructor(readonly socket: net.Socket) {
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.hostClosed = true;
        resolve();
      }),
    );
  }

  /** All input bytes so far. */
  get input(): Buffer {
    return Buffer.concat(this.inputs);
  }

  get inputEnded(): boolean {
    return this.inputs.length > 0 && this.inputs[this.inputs.length - 1]!.length === 0;
  }

  onInput(data: (chunk: Buffer) => void, end?: () => void): void {
    this.inputListener = data;
    this.inputEnd = end;
  }

  onWinsize(cb: (cols: number, rows: number) => void): void {
    this.winsizeListener = cb;
  }

  /** @internal */
  deliver(type: FrameType, payload: Buffer): void {
    if (type === "I") {
      this.inputs.push(Buffer.from(payload));
      if (payload.length === 0) this.inputEnd?.();
      else this.inputListener?.(Buffer.from(payload));
    } else if (type === "W") {
      const size: [number, number] = [payload.readUInt16LE(0), payload.readUInt16LE(2)];
      this.winsizes.push(size);
      this.winsizeListener?.(...size);
    } else if (type === "K") {
      this.signals.push(payload[0] ?? 0);
    }
  }

  /** Sends a frame; false when the socket is full (wait for 'drain'). */
  send(type: FrameType, payload: Buffer | string = Buffer.alloc(0)): boolean {
    if (this.socket.destroyed) return false;
    const body = typeof payload === "string" ? Buffer.from(payload) : payload;
    this.socket.write(frameHeader(type, body.length));
    return body.length === 0 ? !this.socket.writableNeedDrain : this.socket.write(body);
  }

  sendJson(type: FrameType, value: unknown): boolean {
    return this.send(type, JSON.stringify(value));
  }

  /** Sends `data` as frames of ≤ 64 KiB, waiting for drain. */
  async sendStream(type: "O" | "E", data: Buffer): Promise<void> {
    for (const piece of payloadChunks(data)) {
      if (!this.send(type, piece)) await this.drain();
    }
  }

  drain(): Promise<void> {
    if (this.socket.destroyed || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off("drain", done).off("close", done);
        resolve();
      };
      this.socket.on("drain", done).on("close", done);
    });
  }

  writeRaw(data: Buffer | string): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  accept(info: Record<string, unknown> = { pid: 4242 }): void {
    this.sendJson("A", info);
  }

  /** `X` then close, like the agent. */
  exit(code: number, signal?: number, extra: Record<string, unknown> = {}): void {
    this.sendJson("X", signal === undefined ? { code, ...extra } : { code, signal, ...extra });
    this.socket.end();
  }

  fail(error: string, message: string): void {
    this.sendJson("F", { error, message });
    this.socket.end();
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface FakeAgentOptions {
  /** Directory for the socket (default: a fresh temp dir, removed by close()). */
  dir?: string;
  /** Start with the agent not listening (CONNECTs are closed) until `ready = true`. */
  ready?: boolean;
  behaviour?: Behaviour;
  okLine?: () => Buffer;
}

export class FakeAgent {
  /** False → the bridge closes CONNECTs as if nothing listened in the guest. */
  ready: boolean;
  behaviour: Behaviour | undefined;
  readonly sessions: FakeSession[] = [];
  /** What the `secrets` op accepted so far. */
  readonly secrets: Record<string, string> = {};
  private bridge: TestBridge | undefined;

  private constructor(
    readonly udsPath: string,
    private readonly ownDir: string | undefined,
    opts: FakeAgentOptions,
  ) {
    this.ready = opts.ready ?? true;
    this.behaviour = opts.behaviour;
  }

  /** A socket path in a fresh temp dir, for agents started later. */
  static socketPath(): { dir: string; udsPath: string } {
    const dir = mkdtempSync(path.join(os.tmpdir(), "stasis-fake-agent-"));
    return { dir, udsPath: path.join(dir, "vsock.sock") };
  }

  static async start(opts: FakeAgentOptions = {}): Promise<FakeAgent> {
    const ownDir = opts.dir === undefined ? mkdtempSync(path.join(os.tmpdir(), "stasis-fake-agent-")) : undefined;
    const udsPath = path.join(opts.dir ?? ownDir!, "vsock.sock");
    const agent = new FakeAgent(udsPath, ownDir, opts);
    agent.bridge = await TestBridge.start({
      path: udsPath,
      okLine: opts.okLine,
      accept: (port) => (agent.ready && port === AGENT_PORT ? (c, head) => agent.serve(c, head) : null),
    });
    return agent;
  }

  get connects(): number {
    return this.bridge?.connects ?? 0;
  }

  get refused(): number {
    return this.bridge?.refused ?? 0;
  }

  async close(): Promise<void> {
    await this.bridge?.close();
    if (this.ownDir) rmSync(this.ownDir, { recursive: true, force: true });
  }

  private serve(socket: net.Socket, head: Buffer): void {
    const session = new FakeSession(socket);
    let started = false;
    const decoder = new FrameDecoder(HOST_FRAME_TYPES, (f) => {
      if (!started) {
        if (f.type !== "R") return void socket.destroy();
        started = true;
        session.request = JSON.parse(f.payload.toString("utf8")) as Record<string, unknown>;
        this.sessions.push(session);
        void Promise.resolve((this.behaviour ?? defaultBehaviour(this))(session)).catch(() => socket.destroy());
        return;
      }
      session.deliver(f.type, f.payload);
    });
    const push = (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch {
        socket.destroy();
      }
    };
    socket.on("data", push);
    if (head.length > 0) push(head);
    socket.resume();
  }
}

function errnoOf(err: unknown): { error: string; message: string } {
  const e = err as NodeJS.ErrnoException;
  return { error: e.code ?? "EIO", message: e.message };
}

/** The real agent's behaviour, on the host. */
export function defaultBehaviour(agent: FakeAgent): Behaviour {
  return (s) => {
    const req = s.request;
    switch (req.op) {
      case "ping":
        s.accept({ version: 1 });
        return s.exit(0);
      case "exec":
        return req.pty ? fakePty(s) : hostExec(s);
      case "write":
        return fakeWrite(s);
      case "read":
        return fakeRead(s);
      case "secrets": {
        let accepted = 0;
        for (const [k, v] of Object.entries((req.secrets ?? {}) as Record<string, string>)) {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || v.includes("\n")) continue;
          agent.secrets[k] = v;
          accepted++;
        }
        return s.exit(0, undefined, { accepted });
      }
      case "winsize":
        return;
      case "shutdown":
        return s.exit(0);
      default:
        return s.fail("EINVAL", `unknown op ${String(req.op)}`);
    }
  };
}

function hostExec(s: FakeSession): void {
  const req = s.request;
  const cwd = typeof req.cwd === "string" ? req.cwd : "/";
  if (!existsSync(cwd)) return s.fail("ENOENT", `cwd ${cwd}: No such file or directory`);
  const child = spawn("/bin/sh", ["-c", String(req.cmd ?? "")], {
    cwd,
    env: { ...process.env, ...((req.env ?? {}) as Record<string, string>) },
    stdio: [req.stdin ? "pipe" : "ignore", "pipe", "pipe"],
    detached: true,
  });
  let exited = false;
  s.accept({ pid: child.pid });
  const forward = (stream: NodeJS.ReadableStream & { pause(): void; resume(): void }, type: "O" | "E") => {
    stream.on("data", (chunk: Buffer) => {
      for (const piece of payloadChunks(chunk)) {
        if (!s.send(type, piece)) {
          stream.pause();
          void s.drain().then(() => stream.resume());
        }
      }
    });
  };
  forward(child.stdout!, "O");
  forward(child.stderr!, "E");
  if (child.stdin) {
    child.stdin.on("error", () => {});
    s.onInput(
      (data) => {
        if (!child.stdin!.write(data)) {
          s.socket.pause();
          child.stdin!.once("drain", () => s.socket.resume());
        }
      },
      () => child.stdin!.end(),
    );
  }
  child.on("close", (code, signal) => {
    exited = true;
    if (signal) {
      const n = os.constants.signals[signal];
      s.exit(128 + n, n);
    } else s.exit(code ?? 0);
  });
  void s.closed.then(() => {
    if (!exited && child.pid) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
  });
}

/** A pretend terminal: echoes input as output; an empty input ends it with status 0. */
function fakePty(s: FakeSession): void {
  s.accept({ pid: 4243 });
  s.onInput(
    (data) => s.send("O", data),
    () => s.exit(0),
  );
}

function fakeWrite(s: FakeSession): void {
  const req = s.request;
  const file = String(req.path);
  const chunks: Buffer[] = [];
  s.onInput(
    (data) => chunks.push(data),
    () => {
      try {
        if (req.mkdirs !== false) mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, Buffer.concat(chunks), { flag: req.append ? "a" : "w" });
        if (typeof req.mode === "number") chmodSync(file, req.mode);
        s.exit(0);
      } catch (err) {
        const { error, message } = errnoOf(err);
        s.fail(error, message);
      }
    },
  );
}

function fakeRead(s: FakeSession): void {
  const file = String(s.request.path);
  let data: Buffer;
  try {
    if (statSync(file).isDirectory()) return s.fail("EISDIR", `${file}: Is a directory`);
    data = readFileSync(file);
  } catch (err) {
    const { error, message } = errnoOf(err);
    return s.fail(error, message);
  }
  s.accept({ size: data.length });
  void s.sendStream("O", data).then(() => s.exit(0));
}

/** A whole frame, for scripted raw writes. */
export function frame(type: string, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  return encodeFrame(type as FrameType, payload);
}
