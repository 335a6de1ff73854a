#!/usr/bin/env node
// Exec benchmark: one VM, the guest agent over the vsock bridge.
//   - boot (VMM start) → agent listening (milestone 4) → first exec reply,
//     next to /init's own start (milestone 1);
//   - exec round trip of `true`: p50/p99 wall, and the host-side share of it
//     (this process's CPU + the VMM's time outside KVM_RUN + the VMM's vsock
//     I/O thread CPU), per exec;
//   - stdout streaming through onStdout: MB/s, and host CPU per MB.
// Wall time here is dominated by the guest kernel, which kvm_pvm emulates
// (docs: shared/design/kvm-here.md), so every figure is split into guest
// and host-side time. The VMM's live counters come from its control socket.
//   pnpm bench:exec [--execs 50] [--stream-mib 64] [--memory 128]
// Writes bench/results/exec-<timestamp>.json and prints a summary.
import { mkdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const core = await import(path.join(root, "packages/core/dist/index.js"));

const { values: opt } = parseArgs({
  options: {
    execs: { type: "string", default: "50" },
    "stream-mib": { type: "string", default: "64" },
    memory: { type: "string", default: "128" },
  },
});
const execs = Number(opt.execs);
const streamMib = Number(opt["stream-mib"]);
if (core.detectKvm() === "none") {
  console.error("bench: /dev/kvm is not usable here");
  process.exit(1);
}

/** The VMM's counters right now (control socket `stats`). */
function vmmStats(controlPath) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(controlPath);
    let buf = "";
    sock.on("connect", () => sock.write('{"cmd":"stats"}\n'));
    sock.on("data", (c) => {
      buf += c;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      sock.end();
      const reply = JSON.parse(buf.slice(0, nl));
      if (reply.ok) resolve(reply);
      else reject(new Error(`stats: ${reply.error}`));
    });
    sock.on("error", reject);
  });
}

const cpuMs = (u) => (u.user + u.system) / 1000;
const round = (x, d = 3) => +x.toFixed(d);
function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Host-side cost of `work()`: this process's CPU + the VMM's exit handling + vsock thread CPU. */
async function hostSide(controlPath, work) {
  const s0 = await vmmStats(controlPath);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await work();
  const wallMs = performance.now() - t0;
  const clientMs = cpuMs(process.cpuUsage(c0));
  const s1 = await vmmStats(controlPath);
  const vmmOutsideMs = s1.exitHandlingMs - s0.exitHandlingMs;
  const vsockThreadMs = s1.vsockIoThreadMs - s0.vsockIoThreadMs;
  const inKvmRunMs = s1.inKvmRunMs - s0.inKvmRunMs;
  const exits = Object.fromEntries(Object.entries(s1.exits).map(([k, n]) => [k, n - (s0.exits[k] ?? 0)]));
  return { value, wallMs, clientMs, vmmOutsideMs, vsockThreadMs, inKvmRunMs, exits };
}

const t0 = performance.now();
const vm = await core.boot({
  image: core.resolveBaseRootfs(),
  cmd: ["sleep", "1000000"],
  memory: Number(opt.memory),
  timeoutMs: null,
});
const firstReply = await vm.execRaw("true", { connectTimeoutMs: 600_000 });
const firstExecMs = performance.now() - t0;
if (firstReply.exitCode !== 0) throw new Error("first exec failed");
const entry = core.list().find((e) => e.pid === vm.pid);
const controlPath = entry.controlPath;

try {
  for (let i = 0; i < 3; i++) await vm.execRaw("true"); // warm the page cache in the guest

  const walls = [];
  const rt = await hostSide(controlPath, async () => {
    for (let i = 0; i < execs; i++) {
      const s = performance.now();
      const r = await vm.execRaw("true");
      walls.push(performance.now() - s);
      if (r.exitCode !== 0) throw new Error(`exec ${i} failed`);
    }
  });
  walls.sort((a, b) => a - b);

  let bytes = 0;
  const st = await hostSide(controlPath, () =>
    vm.execRaw(`head -c ${streamMib * 1024 * 1024} /dev/zero`, { onStdout: (c) => (bytes += c.length), execTimeoutMs: null }),
  );
  if (bytes !== streamMib * 1024 * 1024) throw new Error(`stream delivered ${bytes} bytes`);

  await vm.stop({ graceMs: 10_000 });
  const exit = await vm.wait();
  const ms = (id) => exit.report.milestones.find((m) => m.id === id)?.ms;
  const mb = bytes / 1e6;
  const out = {
    date: new Date().toISOString(),
    host: { kvm: core.detectKvm(), cpus: (await import("node:os")).cpus().length },
    config: { execs, streamMib, memoryMib: Number(opt.memory) },
    boot: {
      initStartedMs: ms(1),
      agentReadyMs: ms(4),
      agentAfterInitMs: ms(4) !== undefined && ms(1) !== undefined ? round(ms(4) - ms(1), 1) : undefined,
      firstExecReplyMs: round(firstExecMs, 1),
      note: "milestones are ms since VMM start; firstExecReplyMs is from boot() call to the first exec's exit frame",
    },
    roundTrip: {
      p50Ms: round(pct(walls, 50), 2),
      p99Ms: round(pct(walls, 99), 2),
      minMs: round(walls[0], 2),
      maxMs: round(walls[walls.length - 1], 2),
      perExec: {
        guestMs: round(rt.inKvmRunMs / execs, 2),
        hostClientCpuMs: round(rt.clientMs / execs),
        hostVmmOutsideKvmRunMs: round(rt.vmmOutsideMs / execs),
        hostVsockThreadCpuMs: round(rt.vsockThreadMs / execs),
        hostTotalMs: round((rt.clientMs + rt.vmmOutsideMs + rt.vsockThreadMs) / execs),
        exits: Object.fromEntries(Object.entries(rt.exits).map(([k, n]) => [k, round(n / execs, 1)])),
      },
    },
    stream: {
      bytes,
      wallMs: round(st.wallMs, 1),
      mbPerS: round(mb / (st.wallMs / 1000), 2),
      guestMs: round(st.inKvmRunMs, 1),
      hostCpuMsPerMb: {
        client: round(st.clientMs / mb),
        vmmOutsideKvmRun: round(st.vmmOutsideMs / mb),
        vsockThread: round(st.vsockThreadMs / mb),
        total: round((st.clientMs + st.vmmOutsideMs + st.vsockThreadMs) / mb),
      },
    },
  };
  const dir = path.join(root, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `exec-${out.date.replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(JSON.stringify(out, null, 2));
  console.log(`bench: wrote ${path.relative(root, file)}`);
} finally {
  await vm.kill();
}
