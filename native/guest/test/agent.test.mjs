// Host-side protocol tests of the guest agent (docs/agent-protocol.md §2),
// driven over `--listen unix:<path>`. Run by `tools/build-guest --test`:
//   node native/guest/test/agent.test.mjs <path to stasis-agent>
// Exits non-zero when a check fails or the agent dies.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const agentBin = process.argv[2];
if (!agentBin) {
  console.error("usage: agent.test.mjs <stasis-agent binary>");
  process.exit(2);
}
const work = fs.mkdtempSync(path.join(os.tmpdir(), "stasis-agent-test-"));
const MAX_FRAME = 65536;

// --- frames -----------------------------------------------------------------

function frame(type, payload = Buffer.alloc(0)) {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const head = Buffer.alloc(5);
  head.write(type, 0, "latin1");
  head.writeUInt32LE(body.length, 1);
  return Buffer.concat([head, body]);
}
const request = (obj) => frame("R", JSON.stringify(obj));
const input = (data) => frame("I", data);
const winsize = (cols, rows) => {
  const b = Buffer.alloc(4);
  b.writeUInt16LE(cols, 0);
  b.writeUInt16LE(rows, 2);
  return frame("W", b);
};
const signal = (signo) => frame("K", Buffer.from([signo]));

/** One connection to an agent, decoding its frames. */
class Conn {
  constructor(sock) {
    this.frames = [];
    this.waiters = [];
    this.closed = false;
    this.pending = Buffer.alloc(0);
    this.socket = net.connect(sock);
    this.socket.on("error", () => {});
    this.socket.on("data", (d) => this.push(d));
    this.socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
  }

  static open(sock) {
    const c = new Conn(sock);
    return new Promise((resolve, reject) => {
      c.socket.once("connect", () => resolve(c));
      c.socket.once("error", reject);
    });
  }

  push(d) {
    let buf = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    let off = 0;
    while (buf.length - off >= 5) {
      const len = buf.readUInt32LE(off + 1);
      if (buf.length - off - 5 < len) break;
      this.frames.push({ type: String.fromCharCode(buf[off]), payload: buf.subarray(off + 5, off + 5 + len) });
      off += 5 + len;
    }
    this.pending = Buffer.from(buf.subarray(off));
    this.wake();
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(...bufs) {
    for (const b of bufs) this.socket.write(b);
  }

  /** The next frame, or null once the connection has closed. */
  async next(ms = 10000) {
    const deadline = Date.now() + ms;
    while (this.frames.length === 0 && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a frame");
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.frames.shift() ?? null;
  }

  /** Frames until the agent closes: {frames, out, err, exit, fail, accept}. */
  async all(ms = 15000) {
    const frames = [];
    for (;;) {
      const f = await this.next(ms);
      if (!f) break;
      frames.push(f);
    }
    return summarize(frames);
  }

  /** Reads frames until the collected O output matches re. */
  async outputUntil(re, ms = 10000) {
    let out = "";
    const deadline = Date.now() + ms;
    while (!re.test(out)) {
      const f = await this.next(Math.max(1, deadline - Date.now()));
      if (!f) throw new Error(`closed before output matched ${re}: ${JSON.stringify(out)}`);
      if (f.type === "O") out += f.payload.toString();
    }
    return out;
  }

  destroy() {
    this.socket.destroy();
  }
}

function summarize(frames) {
  const json = (t) => {
    const f = frames.find((x) => x.type === t);
    return f ? JSON.parse(f.payload.toString()) : undefined;
  };
  const data = (t) => Buffer.concat(frames.filter((x) => x.type === t).map((x) => x.payload));
  return {
    types: frames.map((f) => f.type).join(""),
    accept: json("A"),
    exit: json("X"),
    fail: json("F"),
    out: data("O"),
    err: data("E"),
  };
}

/** A whole session: request, optional frames, everything until close. */
async function session(sock, req, ...more) {
  const c = await Conn.open(sock);
  c.send(request(req), ...more);
  return c.all();
}

// --- agents -------------------------------------------------------------------

const agents = [];

async function startAgent(name, extraArgs = [], { stdio = ["ignore", "inherit", "pipe"] } = {}) {
  const sock = path.join(work, `${name}.sock`);
  // Every agent gets a --thaw-log: a `thaw` sent by mistake must not set
  // the clock, RNG or hostname of the machine running the tests.
  const thawLog = path.join(work, `${name}.thaw.log`);
  const args = extraArgs.includes("--thaw-log") ? extraArgs : ["--thaw-log", thawLog, ...extraArgs];
  // Started through a shell with SIGINT ignored (as `cmd &` would): the
  // agent must not pass that on to its commands.
  const proc = spawn("/bin/sh", ["-c", 'trap "" INT; exec "$0" "$@"', agentBin, "--listen", `unix:${sock}`, ...args], {
    env: { ...process.env, AGENT_BOOT_VAR: "from-boot", ASAN_OPTIONS: "detect_leaks=0" },
    stdio,
  });
  const agent = { sock, proc, thawLog, stderr: "", exited: null };
  proc.stderr.on("data", (d) => (agent.stderr += d));
  proc.on("exit", (code, sig) => (agent.exited = { code, sig }));
  agents.push(agent);
  for (let i = 0; i < 200; i++) {
    try {
      const c = await Conn.open(sock);
      c.destroy();
      return agent;
    } catch {
      if (agent.exited) break;
      await sleep(25);
    }
  }
  throw new Error(`agent ${name} did not start: ${agent.stderr}`);
}

function rssKib(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m[1]);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid, ms = 5000) {
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

// --- runner -------------------------------------------------------------------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

// A stand-in for PID 1: the shutdown op sends it SIGTERM.
const fakeInit = spawn("sleep", ["1000"], { stdio: "ignore" });
const fakeInitExit = new Promise((resolve) => fakeInit.on("exit", (code, sig) => resolve(sig)));
const main = await startAgent("main", ["--run-dir", path.join(work, "run"), "--init-pid", String(fakeInit.pid)]);
const S = main.sock;

test("ping", async () => {
  const r = await session(S, { op: "ping" });
  assert.equal(r.types, "AX");
  assert.deepEqual(r.accept, { version: 1 });
  assert.deepEqual(r.exit, { code: 0 });
});

// Started first, checked last ("the silent /init's F EIO…"): the 10 s
// timeout of the start op runs while the other tests do.
let silentInit;

test("start: an /init that never answers gets F EIO after about 10 s (checked later)", async () => {
  const a = await startAwaitAgent("await-silent");
  const c = await Conn.open(a.sock);
  const t0 = Date.now();
  c.send(request({ op: "start", realtimeNs: String(nowNs()), cmd: ["true"] }));
  silentInit = (async () => {
    assert.deepEqual(JSON.parse(await a.workload), { cmd: ["true"] });
    const r = await c.all(20000);
    const ms = Date.now() - t0;
    a.proc.kill();
    return { r, ms };
  })();
});

test("exec cmd: stdout, stderr, exit code", async () => {
  const r = await session(S, { op: "exec", cmd: "echo out; echo err >&2; exit 4" });
  assert.equal(r.types[0], "A");
  assert.ok(r.accept.pid > 0);
  assert.equal(r.out.toString(), "out\n");
  assert.equal(r.err.toString(), "err\n");
  assert.deepEqual(r.exit, { code: 4 });
  assert.equal(r.types.at(-1), "X");
});

test("exec env (boot env, request env) and cwd", async () => {
  let r = await session(S, {
    op: "exec",
    cmd: 'echo "$AGENT_BOOT_VAR|$A|$B"; pwd',
    env: { A: "x y", B: "é" },
    cwd: work,
  });
  assert.equal(r.out.toString(), `from-boot|x y|é\n${fs.realpathSync(work)}\n`);
  assert.deepEqual(r.exit, { code: 0 });
  r = await session(S, { op: "exec", argv: ["pwd"] });
  assert.equal(r.out.toString(), "/\n", "the default cwd");
});

test("exec argv: PATH search, 127 when missing, 126 when not executable", async () => {
  let r = await session(S, { op: "exec", argv: ["echo", "a b", "c"] });
  assert.equal(r.out.toString(), "a b c\n");
  r = await session(S, { op: "exec", argv: ["no-such-program-xyz"] });
  assert.deepEqual(r.exit, { code: 127 });
  assert.match(r.err.toString(), /no-such-program-xyz: No such file or directory/);
  const plain = path.join(work, "not-exec");
  fs.writeFileSync(plain, "data\n", { mode: 0o644 });
  r = await session(S, { op: "exec", argv: [plain] });
  assert.deepEqual(r.exit, { code: 126 });
  r = await session(S, { op: "exec", argv: ["not-exec"], env: { PATH: `/nonexistent:${work}` } });
  assert.deepEqual(r.exit, { code: 126 });
});

test("exec with a missing cwd fails with F ENOENT", async () => {
  const r = await session(S, { op: "exec", cmd: "true", cwd: "/no/such/dir" });
  assert.equal(r.types, "F");
  assert.equal(r.fail.error, "ENOENT");
  assert.match(r.fail.message, /\/no\/such\/dir/);
});

test("stdin round trip through cat (with backpressure)", async () => {
  const data = Buffer.alloc(4 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 255;
  const frames = [];
  for (let off = 0; off < data.length; off += MAX_FRAME) frames.push(input(data.subarray(off, off + MAX_FRAME)));
  const r = await session(S, { op: "exec", argv: ["cat"], stdin: true }, ...frames, input(""));
  assert.deepEqual(r.exit, { code: 0 });
  assert.ok(r.out.equals(data), `got ${r.out.length} bytes`);
});

test("a command that stops reading its input still gets its exit frame out", async () => {
  const frames = [];
  for (let i = 0; i < 64; i++) frames.push(input(Buffer.alloc(MAX_FRAME, 0x61)));
  const r = await session(S, { op: "exec", argv: ["head", "-c", "10"], stdin: true }, ...frames, input(""));
  assert.equal(r.out.toString(), "a".repeat(10));
  assert.deepEqual(r.exit, { code: 0 });
});

test("commands start with no blocked or ignored signals (SIGPIPE works)", async () => {
  // Even signals ignored by whoever started the agent (the test starts it
  // with SIGINT ignored) are back to the default.
  let r = await session(S, { op: "exec", argv: ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"] });
  assert.equal(r.out.toString(), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  r = await session(S, { op: "exec", cmd: "yes | head -n 1; echo ${PIPESTATUS[0]}" });
  assert.equal(r.out.toString(), "y\n141\n");
});

test("stdin defaults to /dev/null", async () => {
  const r = await session(S, { op: "exec", cmd: "cat; echo done" });
  assert.equal(r.out.toString(), "done\n");
});

test("a signal-killed command: 128+9 and signal 9", async () => {
  const r = await session(S, { op: "exec", cmd: "kill -9 $$" });
  assert.deepEqual(r.exit, { code: 137, signal: 9 });
});

test("K sends a signal to the process group", async () => {
  const c = await Conn.open(S);
  c.send(request({ op: "exec", cmd: "sleep 100 & sleep 100; echo never" }));
  const a = await c.next();
  assert.equal(a.type, "A");
  await sleep(200);
  c.send(signal(15));
  const r = await c.all();
  assert.deepEqual(r.exit, { code: 143, signal: 15 });
  assert.equal(r.out.length, 0);
});

test("the exit frame does not wait for grandchildren holding the pipes", async () => {
  const t0 = Date.now();
  const r = await session(S, { op: "exec", cmd: "sleep 3 & echo hi" });
  assert.equal(r.out.toString(), "hi\n");
  assert.deepEqual(r.exit, { code: 0 });
  assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
});

test("output still in the pipes at the exit is drained before X", async () => {
  // The host reads nothing for a second after A, so the agent's buffer is
  // full when the command exits and some output waits in the pipes. The
  // exact point depends on socket buffer sizes: try a spread of sizes.
  const one = async (kb) => {
    const c = await Conn.open(S);
    c.send(request({ op: "exec", cmd: `head -c ${kb * 1000} /dev/zero; head -c 50000 /dev/zero >&2; exit 3` }));
    const a = await c.next();
    assert.equal(a.type, "A");
    c.socket.pause();
    await sleep(1000);
    c.socket.resume();
    const r = await c.all();
    assert.equal(r.out.length, kb * 1000, `${kb} KB: stdout`);
    assert.equal(r.err.length, 50000, `${kb} KB: stderr`);
    assert.deepEqual(r.exit, { code: 3 });
  };
  await Promise.all([256, 288, 320, 352, 384, 416, 448, 480, 512].map(one));
});

test("20 concurrent sessions keep their output apart", async () => {
  const runs = [];
  for (let k = 0; k < 20; k++) {
    runs.push(session(S, { op: "exec", cmd: `for i in $(seq 1 300); do echo s${k}-$i; echo e${k}-$i >&2; done; exit ${k}` }));
  }
  const results = await Promise.all(runs);
  results.forEach((r, k) => {
    const want = (p) => Array.from({ length: 300 }, (_, i) => `${p}${k}-${i + 1}\n`).join("");
    assert.equal(r.out.toString(), want("s"));
    assert.equal(r.err.toString(), want("e"));
    assert.deepEqual(r.exit, { code: k });
  });
});

test("64 MiB to a slow reader: backpressure, bounded agent memory", async () => {
  const total = 64 << 20;
  const base = rssKib(main.proc.pid);
  const c = await Conn.open(S);
  c.socket.pause();
  c.send(request({ op: "exec", cmd: `head -c ${total} /dev/zero` }));
  await sleep(800);
  let peak = rssKib(main.proc.pid);
  const sampler = setInterval(() => (peak = Math.max(peak, rssKib(main.proc.pid))), 20);
  // Read slowly for a while, then at full speed.
  let got = 0;
  let exit;
  const deadline = Date.now() + 60000;
  c.socket.resume();
  for (let i = 0; ; i++) {
    if (i < 20) await sleep(20);
    const f = await c.next(Math.max(1, deadline - Date.now()));
    if (!f) break;
    if (f.type === "O") {
      got += f.payload.length;
      assert.ok(f.payload.length <= MAX_FRAME);
    } else if (f.type === "X") exit = JSON.parse(f.payload.toString());
  }
  clearInterval(sampler);
  assert.equal(got, total);
  assert.deepEqual(exit, { code: 0 });
  const growth = peak - base;
  if (process.env.VERBOSE) console.log(`    RSS ${base} KiB, peak ${peak} KiB`);
  assert.ok(growth < 8192, `agent RSS grew by ${growth} KiB (from ${base} KiB)`);
});

test("pty: size, resize, tty, typed input", async () => {
  const c = await Conn.open(S);
  c.send(request({ op: "exec", cmd: "stty size; tty; read line; echo got:$line; stty size; echo TERM=$TERM", pty: { cols: 100, rows: 30 } }));
  assert.equal((await c.next()).type, "A");
  await c.outputUntil(/30 100\r\n\/dev\/pts\/\d+\r\n/);
  c.send(winsize(120, 40), input("hello\r"));
  const r = await c.all();
  const out = r.out.toString();
  assert.match(out, /got:hello\r\n40 120\r\nTERM=xterm-256color\r\n/);
  assert.deepEqual(r.exit, { code: 0 });
  assert.equal(r.err.length, 0);
});

test("pty: Ctrl-C interrupts the foreground command", async () => {
  const c = await Conn.open(S);
  c.send(request({ op: "exec", cmd: "echo ready; sleep 100", pty: { cols: 80, rows: 24, term: "vt100" } }));
  assert.equal((await c.next()).type, "A");
  await c.outputUntil(/ready/);
  await sleep(100);
  c.send(input(Buffer.from([3])));
  const r = await c.all();
  assert.deepEqual(r.exit, { code: 130, signal: 2 });
});

test("pty: default size is 80x24", async () => {
  const r = await session(S, { op: "exec", argv: ["stty", "size"], pty: {} });
  assert.equal(r.out.toString(), "24 80\r\n");
});

test("disconnect mid-exec kills the command (pipes: SIGKILL, pty: SIGHUP)", async () => {
  for (const pty of [undefined, { cols: 80, rows: 24 }]) {
    const c = await Conn.open(S);
    c.send(request({ op: "exec", argv: ["sleep", "100"], pty }));
    const a = await c.next();
    assert.equal(a.type, "A");
    const { pid } = JSON.parse(a.payload.toString());
    assert.ok(alive(pid));
    c.destroy();
    assert.ok(await waitGone(pid), `pid ${pid} still there (pty: ${!!pty})`);
  }
});

test("write and read files", async () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const file = path.join(work, "files", "a", "b", "all.bin");
  let r = await session(S, { op: "write", path: file, mode: 0o755 }, input(all.subarray(0, 100)), input(all.subarray(100)), input(""));
  assert.equal(r.types, "X");
  assert.deepEqual(r.exit, { code: 0 });
  assert.ok(fs.readFileSync(file).equals(all));
  assert.equal(fs.statSync(file).mode & 0o7777, 0o755);

  r = await session(S, { op: "write", path: file, append: true }, input("xyz"), input(""));
  assert.deepEqual(r.exit, { code: 0 });
  const want = Buffer.concat([all, Buffer.from("xyz")]);
  assert.ok(fs.readFileSync(file).equals(want));
  assert.equal(fs.statSync(file).mode & 0o7777, 0o755, "an existing file keeps its mode");

  r = await session(S, { op: "read", path: file });
  assert.equal(r.types[0], "A");
  assert.deepEqual(r.accept, { size: 259 });
  assert.ok(r.out.equals(want));
  assert.deepEqual(r.exit, { code: 0 });

  const fresh = path.join(work, "files", "fresh.txt");
  r = await session(S, { op: "write", path: fresh }, input("new"), input(""));
  assert.deepEqual(r.exit, { code: 0 });
  assert.equal(fs.statSync(fresh).mode & 0o777, 0o644 & ~process.umask());

  r = await session(S, { op: "write", path: fresh }, input(""));
  assert.equal(fs.statSync(fresh).size, 0, "truncated");

  r = await session(S, { op: "write", path: path.join(work, "files", "missing", "deeper", "x"), mkdirs: false }, input("x"), input(""));
  assert.equal(r.types, "F");
  assert.equal(r.fail.error, "ENOENT");

  // The answer arrives even while the host is still sending.
  const many = [];
  for (let i = 0; i < 64; i++) many.push(input(Buffer.alloc(MAX_FRAME)));
  r = await session(S, { op: "write", path: path.join(work, "files", "missing", "y"), mkdirs: false }, ...many, input(""));
  assert.equal(r.types, "F");

  r = await session(S, { op: "write", path: "relative/x" }, input(""));
  assert.equal(r.fail.error, "EINVAL");

  r = await session(S, { op: "read", path: path.join(work, "nope") });
  assert.equal(r.types, "F");
  assert.equal(r.fail.error, "ENOENT");
  r = await session(S, { op: "read", path: work });
  assert.equal(r.fail.error, "EISDIR");

  // A FIFO nobody writes: an answer, not a stalled agent.
  const fifo = path.join(work, "fifo");
  await session(S, { op: "exec", argv: ["mkfifo", fifo] });
  r = await session(S, { op: "write", path: fifo }, input("x"), input(""));
  assert.equal(r.fail.error, "ENXIO");
  r = await session(S, { op: "read", path: fifo });
  assert.ok(r.types === "AX" || r.fail?.error === "EAGAIN", r.types);
});

test("a large file written and read back", async () => {
  const big = Buffer.alloc(5 << 20);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  const file = path.join(work, "files", "big.bin");
  const frames = [];
  for (let off = 0; off < big.length; off += MAX_FRAME) frames.push(input(big.subarray(off, off + MAX_FRAME)));
  let r = await session(S, { op: "write", path: file }, ...frames, input(""));
  assert.deepEqual(r.exit, { code: 0 });
  r = await session(S, { op: "read", path: file });
  assert.deepEqual(r.accept, { size: big.length });
  assert.ok(r.out.equals(big));
});

test("secrets: accepted ones reach later execs and the file", async () => {
  let r = await session(S, { op: "secrets", secrets: { GOOD_KEY: "v1", "1bad": "x", "BAD-KEY": "y", NL: "a\nb", _ok2: "v 2" } });
  assert.equal(r.types, "X");
  assert.deepEqual(r.exit, { code: 0, accepted: 2 });
  r = await session(S, { op: "exec", cmd: 'echo "$GOOD_KEY|${NL-unset}|$_ok2"' });
  assert.equal(r.out.toString(), "v1|unset|v 2\n");
  r = await session(S, { op: "secrets", secrets: { GOOD_KEY: "v2" } });
  assert.deepEqual(r.exit, { code: 0, accepted: 1 });
  r = await session(S, { op: "exec", cmd: 'echo "$GOOD_KEY"' });
  assert.equal(r.out.toString(), "v2\n");
  r = await session(S, { op: "exec", cmd: 'echo "$GOOD_KEY"', env: { GOOD_KEY: "req" } });
  assert.equal(r.out.toString(), "req\n", "request env wins");
  const file = path.join(work, "run", "secrets");
  assert.equal(fs.readFileSync(file, "utf8"), "GOOD_KEY=v2\n_ok2=v 2\n");
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
});

// --- thaw (the agents run with --thaw-log: the effects are log lines) ---------

const INT64_MAX = 9223372036854775807n;
const nowNs = () => BigInt(Date.now()) * 1000000n;
const seedOf = (n) => crypto.randomBytes(n).toString("base64");
const thawLog = () => (fs.existsSync(main.thawLog) ? fs.readFileSync(main.thawLog, "utf8") : "");

/** Runs a thaw; returns the reply and the lines it added to the log. */
async function thaw(req) {
  const before = thawLog();
  const r = await session(S, { op: "thaw", ...req });
  const after = thawLog();
  assert.ok(after.startsWith(before));
  return { ...r, logged: after.slice(before.length) };
}

test("thaw: clock, seed and hostname, and the clock step", async () => {
  const target = nowNs() + 5_000_000_000n;
  let r = await thaw({ realtimeNs: String(target), seed: seedOf(32), hostname: "fork-1.example" });
  assert.equal(r.types, "X");
  assert.deepEqual(Object.keys(r.exit), ["code", "clockStepNs", "guestUs"]);
  assert.deepEqual(Object.keys(r.exit.guestUs), ["thaw"]);
  assert.ok(Number.isInteger(r.exit.guestUs.thaw) && r.exit.guestUs.thaw >= 0);
  assert.equal(r.exit.code, 0);
  assert.match(r.exit.clockStepNs, /^\d+$/);
  // Against the agent's clock, read after ours: at most the 5 s.
  const step = BigInt(r.exit.clockStepNs);
  assert.ok(step <= 5_000_000_000n && step > 3_000_000_000n, `step ${step}`);
  assert.equal(r.logged, `clock ${target}\nseed 32\nhostname fork-1.example\n`);

  // Only the clock, and backwards: a negative step.
  const past = 1700000000123456789n;
  r = await thaw({ realtimeNs: String(past) });
  assert.equal(r.types, "X");
  assert.match(r.exit.clockStepNs, /^-\d+$/);
  // Our clock read after the agent's, but in whole milliseconds.
  const want = past - nowNs();
  const got = BigInt(r.exit.clockStepNs);
  assert.ok(got <= want + 1_000_000n && want - got < 2_000_000_000n, `step ${got}, want about ${want}`);
  assert.equal(r.logged, `clock ${past}\n`);

  // null is absent; the bounds are accepted.
  r = await thaw({ realtimeNs: "0", seed: null, hostname: null });
  assert.equal(r.exit.code, 0);
  assert.match(r.exit.clockStepNs, /^-\d+$/);
  assert.equal(r.logged, "clock 0\n");
  r = await thaw({ realtimeNs: String(INT64_MAX), seed: seedOf(512), hostname: "a".repeat(64) });
  assert.equal(r.types, "X");
  assert.equal(r.logged, `clock ${INT64_MAX}\nseed 512\nhostname ${"a".repeat(64)}\n`);
  r = await thaw({ realtimeNs: "1", seed: seedOf(16), hostname: "A-z.0" });
  assert.equal(r.logged, "clock 1\nseed 16\nhostname A-z.0\n");
});

test("thaw: base64 padding (none, one, two) and the alphabet", async () => {
  const cases = [
    [Buffer.alloc(18, 0xff), "no padding"],
    [Buffer.alloc(17, 0xfb), "one ="],
    [Buffer.alloc(16, 0xfe), "two ="],
    [Buffer.from(Array.from({ length: 256 }, (_, i) => i)), "every byte value"],
  ];
  for (const [bytes, what] of cases) {
    const seed = bytes.toString("base64");
    const r = await thaw({ realtimeNs: "5", seed });
    assert.equal(r.types, "X", `${what}: ${seed}`);
    assert.equal(r.logged, `clock 5\nseed ${bytes.length}\n`, what);
  }
  // Every character of the alphabet, + and / included.
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const r = await thaw({ realtimeNs: "5", seed: alphabet });
  assert.equal(r.logged, "clock 5\nseed 48\n");
});

test("thaw: every invalid field is F EINVAL, and nothing is done", async () => {
  const ns = String(nowNs());
  const seed16 = Buffer.alloc(16).toString("base64"); // AAAAAAAAAAAAAAAAAAAAAA==
  const seed17 = Buffer.alloc(17).toString("base64"); // AAAAAAAAAAAAAAAAAAAAAAA=
  const ok = { realtimeNs: ns, seed: seedOf(32), hostname: "ok" };
  const bad = {
    realtimeNs: [
      undefined, null, "", "-1", "+1", " 1", "1 ", "1.5", "1e9", "0x10", "01", "00", "12a",
      "\u0661\u0662", String(INT64_MAX + 1n), "18446744073709551615", "18446744073709551616",
      "9".repeat(40),
    ],
    seed: [
      "", seedOf(15), seedOf(513), seedOf(1),
      seed16.replace(/=+$/, ""), // padding left out
      seed17.replace(/=$/, ""),
      seed16.slice(0, -1), // one of two = left out
      `${seed16}====`, // a group of padding
      `${seed16.slice(0, -4)}A===`, // three =
      `AAA=${seed16}`, // = before the end
      `${seed16.slice(0, -3)}B==`, // leftover bits set (two =)
      `${seed17.slice(0, -2)}B=`, // leftover bits set (one =)
      `${seed16.slice(0, -4)}-_==`, // base64url
      `${seed16.slice(0, 8)} ${seed16.slice(9)}`,
      `${seed16.slice(0, 8)}\n${seed16.slice(9)}`,
      `${seed16.slice(0, 8)}*${seed16.slice(9)}`,
      `${seed16.slice(0, 8)}é${seed16.slice(10)}`,
    ],
    hostname: ["", "a".repeat(65), "a_b", "a b", "a/b", "é", "host\n", "host!"],
  };
  for (const [field, values] of Object.entries(bad)) {
    for (const v of values) {
      const req = { ...ok, [field]: v };
      if (v === undefined) delete req[field];
      if (v === null && field !== "realtimeNs") continue;
      const r = await thaw(req);
      const what = `${field} ${JSON.stringify(v)}`;
      assert.equal(r.types, "F", what);
      assert.equal(r.fail.error, "EINVAL", what);
      assert.ok(r.fail.message.startsWith(`"${field}" must be`), `${what}: ${r.fail.message}`);
      assert.equal(r.logged, "", `${what}: logged ${JSON.stringify(r.logged)}`);
    }
  }
  // The agent still thaws afterwards.
  assert.equal((await thaw(ok)).types, "X");
});

test("thaw: a field of the wrong JSON type drops the session (as for any op)", async () => {
  for (const req of [{ realtimeNs: 1700000000000000000 }, { realtimeNs: "1", seed: 5 }, { realtimeNs: "1", hostname: true }]) {
    const r = await thaw(req);
    assert.equal(r.types, "", JSON.stringify(req));
    assert.equal(r.logged, "");
  }
});

test("thaw: a step that fails is F with its errno", async () => {
  const log = path.join(work, "no-such-dir", "thaw.log");
  const a = await startAgent("thaw-fail", ["--thaw-log", log]);
  const r = await session(a.sock, { op: "thaw", realtimeNs: "1" });
  assert.equal(r.types, "F");
  assert.equal(r.fail.error, "ENOENT");
  assert.equal(r.fail.message, `${log}: No such file or directory`);
  a.proc.kill();
});

// --- start (await mode: the test plays /init on the agent's fds 3 and 4) ------

/**
 * An agent started with --await-workload. `workload` resolves to what it
 * wrote on descriptor 3 once it closed it; `answer(buf)` writes /init's
 * answer to descriptor 4 and closes it.
 */
async function startAwaitAgent(name, extraArgs = []) {
  const a = await startAgent(name, ["--await-workload", ...extraArgs], {
    stdio: ["ignore", "inherit", "pipe", "pipe", "pipe"],
  });
  const chunks = [];
  a.workloadBytes = () => Buffer.concat(chunks).length;
  a.workload = new Promise((resolve) => {
    a.proc.stdio[3].on("data", (d) => chunks.push(d));
    a.proc.stdio[3].on("end", () => resolve(Buffer.concat(chunks).toString()));
  });
  a.proc.stdio[4].on("error", () => {});
  a.answer = (buf) => a.proc.stdio[4].end(buf);
  a.log = () => (fs.existsSync(a.thawLog) ? fs.readFileSync(a.thawLog, "utf8") : "");
  return a;
}

/** /init's `V` answer for these variables. */
const answerV = (vars) => Buffer.from(`V${vars.map((v) => `${v}\0`).join("")}`);
const MACHINE_ID = "0123456789abcdef0123456789abcdef";

test("start without --await-workload: F ENOTSUP", async () => {
  const before = thawLog();
  const r = await session(S, { op: "start", realtimeNs: "1", cmd: ["true"] });
  assert.equal(r.types, "F");
  assert.equal(r.fail.error, "ENOTSUP");
  assert.equal(thawLog(), before, "nothing logged");
});

test("start: thaw steps, machine-id, the workload to /init, its environment for later execs", async () => {
  const a = await startAwaitAgent("await-ok");
  // Before start: the machine half's environment, and no pipe leaks into commands.
  let r = await session(a.sock, {
    op: "exec",
    cmd: 'echo "$AGENT_BOOT_VAR"; for f in 3 4; do [ -e /proc/$$/fd/$f ] && echo "fd $f leaked"; done; true',
  });
  assert.equal(r.out.toString(), "from-boot\n");

  const target = nowNs() + 2_000_000_000n;
  const c = await Conn.open(a.sock);
  c.send(request({
    op: "start", realtimeNs: String(target), seed: seedOf(32), hostname: "vm-1", machineId: MACHINE_ID,
    cmd: ["/bin/sh", "-c", 'echo "$A"\n', "é\u0001\""], env: { A: "1", B: 'x"\\' }, cwd: "/tmp",
  }));
  const workload = await a.workload;
  assert.deepEqual(JSON.parse(workload), {
    cmd: ["/bin/sh", "-c", 'echo "$A"\n', "é\u0001\""], env: { A: "1", B: 'x"\\' }, cwd: "/tmp",
  });
  a.answer(answerV(["PATH=/usr/local/bin:/usr/bin:/bin", "A=1", "WL=x y=z", "EMPTY="]));
  r = await c.all();
  assert.equal(r.types, "X");
  assert.deepEqual(Object.keys(r.exit), ["code", "clockStepNs", "guestUs"]);
  assert.deepEqual(Object.keys(r.exit.guestUs), ["validate", "thaw", "machine-id", "handoff"]);
  for (const us of Object.values(r.exit.guestUs)) assert.ok(Number.isInteger(us) && us >= 0);
  const step = BigInt(r.exit.clockStepNs);
  assert.ok(step <= 2_000_000_000n && step > 0n, `step ${step}`);
  assert.equal(a.log(), `clock ${target}\nseed 32\nhostname vm-1\nmachine-id ${MACHINE_ID}\n`);

  // The answer is the base environment now: the boot one is gone.
  r = await session(a.sock, { op: "exec", cmd: 'echo "$WL|${AGENT_BOOT_VAR-unset}|$A|${EMPTY-unset}"; pwd', env: { A: "req" } });
  assert.equal(r.out.toString(), "x y=z|unset|req|\n/\n");
  r = await session(a.sock, { op: "exec", argv: ["env"] });
  assert.deepEqual(r.out.toString().trim().split("\n").sort(), ["A=1", "EMPTY=", "PATH=/usr/local/bin:/usr/bin:/bin", "WL=x y=z"]);

  r = await session(a.sock, { op: "start", realtimeNs: "1", cmd: ["true"] });
  assert.equal(r.types, "F");
  assert.equal(r.fail.error, "EALREADY");
  assert.equal(a.log(), `clock ${target}\nseed 32\nhostname vm-1\nmachine-id ${MACHINE_ID}\n`, "nothing more done");
  a.proc.kill();
});

test("start: /init refuses the workload (E): F EINVAL with its message", async () => {
  const a = await startAwaitAgent("await-refused");
  const c = await Conn.open(a.sock);
  c.send(request({ op: "start", realtimeNs: "5", cmd: ["x"], cwd: "/nope" }));
  assert.deepEqual(JSON.parse(await a.workload), { cmd: ["x"], cwd: "/nope" });
  a.answer(Buffer.from("Eworkload: chdir /nope: No such file or directory"));
  const r = await c.all();
  assert.equal(r.types, "F");
  assert.equal(r.fail.error, "EINVAL");
  assert.ok(r.fail.message.startsWith("workload: chdir /nope: No such file or directory"), r.fail.message);
  assert.equal(a.log(), "clock 5\n", "the thaw steps stay done");
  assert.equal((await session(a.sock, { op: "start", realtimeNs: "5", cmd: ["x"] })).fail.error, "EALREADY");
  assert.equal((await session(a.sock, { op: "exec", cmd: 'echo "$AGENT_BOOT_VAR"' })).out.toString(), "from-boot\n");
  a.proc.kill();
});

test("start: /init closes without an answer, or answers nonsense: F EIO", async () => {
  for (const [name, answer, message] of [
    ["await-closed", Buffer.alloc(0), /without answering/],
    ["await-nonsense", Buffer.from("Vno-equals-sign\0"), /malformed answer/],
    ["await-unterminated", Buffer.from("VA=1"), /malformed answer/],
  ]) {
    const a = await startAwaitAgent(name);
    const c = await Conn.open(a.sock);
    c.send(request({ op: "start", realtimeNs: "5", cmd: ["x"] }));
    await a.workload;
    a.answer(answer);
    const r = await c.all();
    assert.equal(r.fail?.error, "EIO", name);
    assert.match(r.fail.message, message, name);
    assert.equal((await session(a.sock, { op: "exec", cmd: 'echo "$AGENT_BOOT_VAR"' })).out.toString(), "from-boot\n", name);
    a.proc.kill();
  }
});

test("start: an invalid field is F EINVAL, nothing is done and nothing reaches /init", async () => {
  const a = await startAwaitAgent("await-invalid");
  const ok = { op: "start", realtimeNs: "7", seed: seedOf(16), hostname: "h", machineId: MACHINE_ID, cmd: ["true"] };
  const bad = {
    realtimeNs: [undefined, "-1", "1.5"],
    seed: ["", seedOf(15)],
    hostname: ["", "a b"],
    machineId: ["", MACHINE_ID.slice(1), `${MACHINE_ID}0`, MACHINE_ID.toUpperCase(), "0".repeat(32), `${MACHINE_ID.slice(1)}g`, `${MACHINE_ID.slice(1)}-`],
    cmd: [undefined, null, []],
  };
  for (const [field, values] of Object.entries(bad)) {
    for (const v of values) {
      const req = { ...ok, [field]: v };
      if (v === undefined) delete req[field];
      const r = await session(a.sock, req);
      const what = `${field} ${JSON.stringify(v)}`;
      assert.equal(r.types, "F", what);
      assert.equal(r.fail.error, "EINVAL", what);
      assert.ok(r.fail.message.startsWith(`"${field}" must be`), `${what}: ${r.fail.message}`);
    }
  }
  // Fields of the wrong JSON type drop the session, for start as for every
  // op: "cmd" is an array here (a string for exec).
  for (const extra of [{ cmd: "true" }, { cmd: [1] }, { env: { A: 1 } }, { env: ["A"] }, { cwd: 5 }, { machineId: 5 }]) {
    const r = await session(a.sock, { ...ok, ...extra });
    assert.equal(r.types, "", JSON.stringify(extra));
  }
  // An array "cmd" still drops an exec, as before.
  assert.equal((await session(a.sock, { op: "exec", cmd: ["true"] })).types, "");
  await sleep(100);
  assert.equal(a.workloadBytes(), 0, "nothing written to /init");
  assert.equal(a.log(), "", "nothing logged");

  // The agent still awaits: a valid start goes through.
  const c = await Conn.open(a.sock);
  c.send(request(ok));
  assert.deepEqual(JSON.parse(await a.workload), { cmd: ["true"] });
  a.answer(answerV(["PATH=/bin"]));
  const r = await c.all();
  assert.equal(r.types, "X");
  assert.equal(a.log(), `clock 7\nseed 16\nhostname h\nmachine-id ${MACHINE_ID}\n`);
  a.proc.kill();
});

test("start: --await-workload without descriptors 3 and 4 is a startup error", async () => {
  const proc = spawn(agentBin, ["--await-workload", "--listen", `unix:${path.join(work, "no-fds.sock")}`], {
    env: { ...process.env, ASAN_OPTIONS: "detect_leaks=0" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  proc.stderr.on("data", (d) => (err += d));
  const code = await new Promise((resolve) => proc.on("exit", resolve));
  assert.equal(code, 2);
  assert.match(err, /--await-workload needs the workload pipe on descriptor 3/);
});

test("start: the silent /init's F EIO arrived after about 10 s", async () => {
  const { r, ms } = await silentInit;
  assert.equal(r.types, "F");
  assert.equal(r.fail.error, "EIO");
  assert.match(r.fail.message, /did not answer within 10 s/);
  assert.ok(ms >= 9500 && ms < 15000, `after ${ms} ms`);
});

test("malformed frames drop the session, not the agent", async () => {
  const closesSilently = async (...bufs) => {
    const c = await Conn.open(S);
    c.send(...bufs);
    const r = await c.all(5000);
    assert.equal(r.types, "", `unexpected frames ${r.types}`);
  };
  await closesSilently(frame("Z", "x"));
  const big = Buffer.alloc(5);
  big.write("I", 0, "latin1");
  big.writeUInt32LE(MAX_FRAME + 1, 1);
  await closesSilently(request({ op: "exec", cmd: "cat", stdin: true }).subarray(0, 0), big);
  await closesSilently(frame("R", "not json"));
  await closesSilently(frame("R", '{"op":"exec","cmd":5}'));
  await closesSilently(frame("R", '{"op":"ping"} trailing'));
  await closesSilently(frame("R", Buffer.from([0x7b, 0x00, 0x7d])));
  await closesSilently(input("data before the request"));
  await closesSilently(request({ op: "exec", argv: ["sleep", "100"], pty: { cols: "wide" } }));

  // Mid-exec: a bad frame kills the command with the session.
  const c = await Conn.open(S);
  c.send(request({ op: "exec", argv: ["sleep", "100"] }));
  const a = await c.next();
  const { pid } = JSON.parse(a.payload.toString());
  c.send(frame("W", "short"));
  const r = await c.all(5000);
  assert.equal(r.types, "");
  assert.ok(await waitGone(pid));

  const u = await session(S, { op: "nope" });
  assert.equal(u.fail.error, "EINVAL");
  assert.deepEqual((await session(S, { op: "ping" })).exit, { code: 0 });
});

test("a request split across many writes, frames coalesced", async () => {
  const c = await Conn.open(S);
  const all = Buffer.concat([request({ op: "exec", argv: ["cat"], stdin: true }), input("a"), input("b"), input("")]);
  for (const byte of all) {
    c.send(Buffer.from([byte]));
  }
  const r = await c.all();
  assert.equal(r.out.toString(), "ab");
});

test("more than 256 sessions: EBUSY", async () => {
  const idle = [];
  for (let i = 0; i < 256; i++) idle.push(await Conn.open(S));
  await sleep(300);
  const c = await Conn.open(S);
  const r = await c.all(5000);
  assert.equal(r.types, "F");
  assert.equal(r.fail.error, "EBUSY");
  for (const x of idle) x.destroy();
  await sleep(200);
  assert.deepEqual((await session(S, { op: "ping" })).exit, { code: 0 });
});

test("winsize resizes the configured terminals", async () => {
  const holder = await Conn.open(S);
  holder.send(request({ op: "exec", cmd: "tty; read x", pty: { cols: 10, rows: 10 } }));
  const tty = (await holder.outputUntil(/\/dev\/pts\/\d+\r\n/)).trim();
  const second = await startAgent("winsize", ["--winsize-tty", "/nonexistent/tty", "--winsize-tty", tty]);
  const w = await Conn.open(second.sock);
  w.send(request({ op: "winsize" }), winsize(77, 33));
  await sleep(200);
  let r = await session(S, { op: "exec", argv: ["stty", "-F", tty, "size"] });
  assert.equal(r.out.toString(), "33 77\n");
  w.send(winsize(90, 20));
  await sleep(200);
  r = await session(S, { op: "exec", argv: ["stty", "-F", tty, "size"] });
  assert.equal(r.out.toString(), "20 90\n");
  w.destroy();
  holder.send(input("\r"));
  assert.deepEqual((await holder.all()).exit, { code: 0 });
  second.proc.kill();
});

test("shutdown answers, then signals init", async () => {
  const r = await session(S, { op: "shutdown" });
  assert.deepEqual(r.exit, { code: 0 });
  const sig = await Promise.race([fakeInitExit, sleep(3000).then(() => "timeout")]);
  assert.equal(sig, "SIGTERM");
});

let failed = 0;
for (const t of tests) {
  const t0 = Date.now();
  try {
    await Promise.race([
      t.fn(),
      sleep(90000).then(() => {
        throw new Error("test timed out");
      }),
    ]);
    console.log(`  ok   ${t.name} (${Date.now() - t0} ms)`);
  } catch (err) {
    failed++;
    console.log(`  FAIL ${t.name}: ${err.stack ?? err}`);
  }
  if (main.exited) {
    failed++;
    console.log(`  FAIL the agent died: ${JSON.stringify(main.exited)}\n${main.stderr}`);
    break;
  }
}
for (const a of agents) if (!a.exited) a.proc.kill();
fakeInit.kill();
if (main.stderr.trim()) console.log(`agent stderr:\n${main.stderr}`);
fs.rmSync(work, { recursive: true, force: true });
console.log(`agent.test (${path.basename(agentBin)}): ${tests.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
