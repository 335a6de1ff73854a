/**
 * A fake stasis-vmm for tests without KVM: speaks the control socket,
 * report descriptor, vsock bridge and agent ops of docs/vmstate.md and
 * docs/agent-protocol.md. Its "guest" is a JSON object ({ counter }) that
 * travels in memory.img, so state continuity across snapshot → restore is
 * observable. Behaviour knobs (env):
 *   FAKE_VMM_SNAPSHOT      ok (default) | refuse | hang | die
 *   FAKE_VMM_RESTORE_ERROR a VMM_RESTORE_* code to fail a restore with
 *   FAKE_VMM_THAW          ok (default) | refuse
 *   FAKE_VMM_START         ok (default) | refuse (the agent's `start`)
 *   FAKE_VMM_LOG           file to append one JSON line per notable event
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

const argv = process.argv.slice(2);
const args = { disk: [] };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (!a.startsWith("--")) continue;
  const key = a.slice(2);
  const value = argv[i + 1];
  i++;
  if (key === "disk") args.disk.push(value);
  else args[key] = value;
}

const reportFd = args["report-fd"] !== undefined ? Number(args["report-fd"]) : undefined;
function report(obj) {
  if (reportFd === undefined) return;
  try {
    fs.writeSync(reportFd, `${JSON.stringify(obj)}\n`);
  } catch {
    // nobody reads the report any more
  }
}
function log(obj) {
  if (process.env.FAKE_VMM_LOG) fs.appendFileSync(process.env.FAKE_VMM_LOG, `${JSON.stringify({ pid: process.pid, ...obj })}\n`);
}
function cleanupSockets() {
  for (const p of [args.control, args.vsock]) if (p) fs.rmSync(p, { force: true });
}
function exitWith(reason, status) {
  report({ event: "exit", reason, status });
  cleanupSockets();
  process.exit(status);
}

log({ event: "start", argv });
const diskPath = (d) => d.replace(/:ro$/, "");
let guest = { counter: 0 };

if (args.restore !== undefined) {
  const dir = args.restore;
  const fail = (code, message) => {
    report({ event: "error", code, message });
    report({ event: "exit", reason: "error", status: 1 });
    process.stderr.write(`fake-vmm: ${code}: ${message}\n`);
    process.exit(1);
  };
  for (const refused of ["kernel", "initrd", "memory", "cpus", "append"]) {
    if (args[refused] !== undefined) {
      process.stderr.write(`fake-vmm: --${refused} cannot be used with --restore\n`);
      process.exit(2);
    }
  }
  if (process.env.FAKE_VMM_RESTORE_ERROR) fail(process.env.FAKE_VMM_RESTORE_ERROR, "forced by the test");
  let state;
  try {
    const buf = fs.readFileSync(path.join(dir, "state.vmstate"));
    if (buf.length < 32 || buf.subarray(0, 8).toString("latin1") !== "STASISVM") throw new Error("bad magic");
    if (buf.length !== 32 + Number(buf.readBigUInt64LE(16))) throw new Error("bad length");
    state = JSON.parse(buf.subarray(32).toString("utf8"));
  } catch (e) {
    fail("VMM_RESTORE_INVALID", `state.vmstate: ${e.message}`);
  }
  if (args.disk.length !== state.disks.length) fail("VMM_RESTORE_DISK_MISMATCH", `${args.disk.length} disks given, ${state.disks.length} saved`);
  if (!args.disk[0].endsWith(":ro") || fs.statSync(diskPath(args.disk[0])).size !== state.disks[0].size) {
    fail("VMM_RESTORE_DISK_MISMATCH", "disk 0 differs from the saved one");
  }
  guest = JSON.parse(fs.readFileSync(path.join(dir, "memory.img"), "utf8"));
  report({ event: "restored", ms: 3 });
  process.stdout.write(`restored counter=${guest.counter}\n`);
} else {
  for (const id of [1, 2, 4]) report({ event: "milestone", id, ms: id });
}

function writeSnapshot(dir) {
  const partial = `${dir}.partial-${process.pid}`;
  fs.mkdirSync(partial);
  const body = Buffer.from(JSON.stringify({ disks: [{ ro: true, size: fs.statSync(diskPath(args.disk[0])).size }, { ro: false }] }));
  const header = Buffer.alloc(32);
  header.write("STASISVM", 0, "latin1");
  header.writeUInt32LE(1, 8);
  header.writeBigUInt64LE(BigInt(body.length), 16);
  fs.writeFileSync(path.join(partial, "state.vmstate"), Buffer.concat([header, body]));
  fs.writeFileSync(path.join(partial, "memory.img"), JSON.stringify(guest));
  fs.copyFileSync(diskPath(args.disk[1]), path.join(partial, "disk-1.img"));
  fs.renameSync(partial, dir);
}

function onControl(req, reply, hangUp) {
  switch (req.cmd) {
    case "snapshot": {
      const mode = process.env.FAKE_VMM_SNAPSHOT ?? "ok";
      log({ event: "snapshot", req, mode });
      if (mode === "hang") return;
      if (mode === "refuse") return reply({ ok: false, code: "SNAPSHOT_DUMP_FAILED", error: "no space left on device" });
      if (mode === "die") {
        // Like a real VMM killed mid-dump: the connection breaks at once, but
        // the process takes a moment to finish exiting (unmapping its RAM).
        fs.mkdirSync(`${req.dir}.partial-${process.pid}`);
        hangUp();
        setTimeout(() => process.kill(process.pid, "SIGKILL"), 700);
        return;
      }
      if (typeof req.dir !== "string" || !path.isAbsolute(req.dir) || fs.existsSync(req.dir)) {
        return reply({ ok: false, code: "SNAPSHOT_DUMP_FAILED", error: `bad dir ${req.dir}` });
      }
      writeSnapshot(req.dir);
      const timings = { pauseMs: 1, stateMs: 1, memoryMs: 2, disksMs: 1, writeMs: 1, pausedMs: 5, totalMs: 6 };
      return reply(
        { ok: true, dir: req.dir, files: ["state.vmstate", "memory.img", "disk-1.img"], memoryBytes: 4096, timings },
        req.leaveRunning === false ? () => exitWith("snapshot", 0) : undefined,
      );
    }
    case "shutdown":
      return reply({ ok: true }, () => exitWith("shutdown", 0));
    case "detach":
      return reply({ ok: true });
    default:
      return reply({ ok: false, error: `unknown cmd ${req.cmd}` });
  }
}

if (args.control) {
  net
    .createServer((sock) => {
      let buf = "";
      sock.on("error", () => {});
      sock.on("data", (c) => {
        buf += c;
        const nl = buf.indexOf("\n");
        if (nl < 0) return;
        const req = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        onControl(req, (obj, then) => sock.end(`${JSON.stringify(obj)}\n`, then), () => sock.destroy());
      });
    })
    .listen(args.control);
}

function frame(type, payload) {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload));
  const h = Buffer.alloc(5);
  h.write(type, 0, "latin1");
  h.writeUInt32LE(body.length, 1);
  return Buffer.concat([h, body]);
}

function onAgent(sock, req) {
  const send = (type, payload) => sock.write(frame(type, payload));
  const done = (type, payload) => sock.end(frame(type, payload));
  switch (req.op) {
    case "ping":
      send("A", { version: 1 });
      return done("X", { code: 0 });
    case "thaw": {
      const okSeed = typeof req.seed === "string" && Buffer.from(req.seed, "base64").length >= 16 && Buffer.from(req.seed, "base64").length <= 512;
      if (typeof req.realtimeNs !== "string" || !/^\d+$/.test(req.realtimeNs) || !okSeed) return done("F", { error: "EINVAL", message: "bad thaw" });
      log({ event: "thaw", realtimeNs: req.realtimeNs, seedBytes: Buffer.from(req.seed, "base64").length, hostNowMs: Date.now() });
      if (process.env.FAKE_VMM_THAW === "refuse") return done("F", { error: "EINVAL", message: "unknown op thaw" });
      return done("X", { code: 0, clockStepNs: String(BigInt(req.realtimeNs) - BigInt(Date.now()) * 1000000n) });
    }
    case "start": {
      // A warm boot's hand-over: the thaw fields plus the workload (docs/agent-protocol.md).
      const { realtimeNs, seed, hostname, machineId, cmd, env, cwd } = req;
      log({ event: "agent-start", realtimeNs, seedBytes: Buffer.from(seed ?? "", "base64").length, hostname, machineId, cmd, env, cwd });
      if (process.env.FAKE_VMM_START === "refuse") return done("F", { error: "EINVAL", message: "chdir /nope: No such file or directory" });
      return done("X", { code: 0, clockStepNs: "0" });
    }
    case "exec": {
      send("A", { pid: 42 });
      if (req.cmd === "bump") {
        guest.counter++;
        send("O", `${guest.counter}\n`);
        return done("X", { code: 0 });
      }
      try {
        const out = execFileSync("/bin/sh", ["-c", req.cmd], { stdio: ["ignore", "pipe", "pipe"] });
        if (out.length) send("O", out);
        return done("X", { code: 0 });
      } catch (e) {
        if (e.stdout?.length) send("O", e.stdout);
        if (e.stderr?.length) send("E", e.stderr);
        return done("X", { code: e.status ?? 1 });
      }
    }
    default:
      return done("F", { error: "EINVAL", message: `unknown op ${req.op}` });
  }
}

if (args.vsock) {
  net
    .createServer((sock) => {
      let buf = Buffer.alloc(0);
      let connected = false;
      let handled = false;
      sock.on("error", () => {});
      sock.on("data", (c) => {
        buf = Buffer.concat([buf, c]);
        if (!connected) {
          const nl = buf.indexOf(10);
          if (nl < 0) return;
          const line = buf.subarray(0, nl).toString();
          buf = buf.subarray(nl + 1);
          if (line !== "CONNECT 1978") return sock.destroy();
          connected = true;
          sock.write("OK 1\n");
        }
        if (handled || buf.length < 5) return;
        const len = buf.readUInt32LE(1);
        if (buf.length < 5 + len) return;
        handled = true;
        onAgent(sock, JSON.parse(buf.subarray(5, 5 + len).toString("utf8")));
      });
    })
    .listen(args.vsock);
}

process.on("SIGTERM", () => exitWith("shutdown", 0));
setInterval(() => {}, 1 << 30);
