#!/usr/bin/env node
// Warm boot benchmark (issue 5 targets), side by side with a cold boot in
// the same run, on a private, empty warm cache:
//   - cold boot() → command running (its first stdout byte), with the
//     cache left alone (`warm: false`);
//   - the filling boot: the same, plus the snapshot that fills the cache;
//   - warm boot() → command running, → first exec reply, and the VMM's own
//     start → vCPUs running (its `restored` event);
//   - density: host RSS of N idle warm-booted VMs of one key, against the
//     cache entry's touched guest memory (memory.img's allocated bytes).
// Guest-kernel work is emulated here (shared/design/kvm-here.md), so boots
// are slow and every guest round trip costs; the VMM figures are exact.
//   pnpm bench:warm [--memory 256] [--warm-boots 5] [--vms 8]
// Writes bench/results/warm-<timestamp>.json and prints a summary.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadRuntime, round, rss, writeResult } from "./lib.mjs";

const rt = await loadRuntime();

const { values: opt } = parseArgs({
  options: {
    memory: { type: "string", default: "256" },
    "warm-boots": { type: "string", default: "5" },
    vms: { type: "string", default: "8" },
  },
});
const memoryMib = Number(opt.memory);
const warmBoots = Number(opt["warm-boots"]);
const vms = Number(opt.vms);
if (rt.detectKvm() === "none") {
  console.error("bench: /dev/kvm is not usable here");
  process.exit(1);
}

const log = (...a) => console.error("bench:", ...a);
const work = mkdtempSync(path.join(os.tmpdir(), "stasis-bench-warm-"));
process.env.STASIS_WARM_DIR = path.join(work, "warm");
const image = rt.resolveBaseRootfs();

/**
 * One foreground boot whose command prints a line and idles. Returns the
 * times from the boot() call to the command's first output and to the
 * first exec reply, the VMM's report and the warm events.
 */
async function timedBoot(opts) {
  const events = [];
  const phases = {};
  let firstOutput;
  const firstByte = new Promise((resolve) => (firstOutput = resolve));
  const t0 = performance.now();
  const vm = await rt.boot({
    image,
    memory: memoryMib,
    cmd: ["/bin/sh", "-c", "echo running; exec sleep 100000"],
    onStdout: () => firstOutput(performance.now()),
    onLog: (e) => {
      if (e.source === "warm") events.push(e.event);
      if (e.source === "phase") for (const [k, v] of e.phases) phases[`${e.kind}.${k}`] = round(v, 2);
    },
    ...opts,
  });
  const returned = performance.now();
  const running = await firstByte;
  await vm.exec("true");
  const execReply = performance.now();
  await vm.stop();
  const exit = await vm.wait();
  return {
    warm: events,
    bootCallMs: round(returned - t0),
    commandRunningMs: round(running - t0),
    firstExecReplyMs: round(execReply - t0),
    vmmRestoredMs: exit.report.restored?.ms ?? null,
    vmmMilestones: exit.report.milestones,
    phases,
  };
}

const cold = await timedBoot({ warm: false });
log(`cold boot: command running after ${round(cold.commandRunningMs / 1000, 2)} s, first exec reply ${round(cold.firstExecReplyMs / 1000, 2)} s`);
const fill = await timedBoot({});
log(`filling boot (${fill.warm.join(", ")}): command running after ${round(fill.commandRunningMs / 1000, 2)} s; fill ${fill.phases["boot.warm.fill"]} ms`);
const warm = [];
for (let i = 0; i < warmBoots; i++) warm.push(await timedBoot({}));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const warmRunning = median(warm.map((w) => w.commandRunningMs));
log(
  `warm boots (${warm.map((w) => w.warm.join("")).join(", ")}): VMM start → vCPUs running ${warm.map((w) => w.vmmRestoredMs).join(", ")} ms; ` +
    `command running ${warm.map((w) => w.commandRunningMs).join(", ")} ms; first exec reply ${warm.map((w) => w.firstExecReplyMs).join(", ")} ms`,
);
log(`speed-up, boot() → command running (median warm): ${round(cold.commandRunningMs / warmRunning)}×`);

// Density: N idle warm VMs of the one key.
const [entry] = rt.listWarm();
const memoryImg = path.join(entry.dir, "memory.img");
const touchedKiB = Math.round((statSync(memoryImg).blocks * 512) / 1024);
const idle = [];
for (let i = 0; i < vms; i++) {
  const h = await rt.boot({ image, memory: memoryMib, detached: true, cmd: ["/bin/sh", "-c", "exec sleep 100000"] });
  await h.exec("true");
  idle.push(h);
}
const rows = idle.map((h) => ({ pid: h.pid, ...rss(h.pid) }));
const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
log(
  `${vms} idle warm VMs: RSS ${round(sum("rss") / 1024)} MiB summed (anon ${round(sum("anon") / 1024)}, file ${round(sum("file") / 1024)}, shmem ${round(sum("shmem") / 1024)}); ` +
    `PSS ${round(sum("pss") / 1024)} MiB in total (anon ${round(sum("pssAnon") / 1024)}, file ${round(sum("pssFile") / 1024)}); ` +
    `the entry's touched guest memory ${round(touchedKiB / 1024)} MiB`,
);
for (const h of idle) await h.stop().catch(() => {});

const out = {
  bench: "warm",
  at: new Date().toISOString(),
  host: { cpus: os.cpus().length, kernel: os.release(), kvm: rt.detectKvm() },
  guest: { memoryMib, image },
  cold,
  fill,
  warm,
  summary: {
    coldCommandRunningMs: cold.commandRunningMs,
    warmCommandRunningMedianMs: warmRunning,
    speedup: round(cold.commandRunningMs / warmRunning),
    warmVmmStartToVcpusRunningMs: warm.map((w) => w.vmmRestoredMs),
    warmFirstExecReplyMs: warm.map((w) => w.firstExecReplyMs),
  },
  density: {
    vms,
    entryTouchedMemoryKiB: touchedKiB,
    perVmKiB: rows,
    totalRssKiB: sum("rss"),
    totalAnonKiB: sum("anon"),
    totalFileKiB: sum("file"),
    totalShmemKiB: sum("shmem"),
    totalPssKiB: sum("pss"),
    totalPssAnonKiB: sum("pssAnon"),
    totalPssFileKiB: sum("pssFile"),
  },
};
const file = writeResult("warm", out);
rmSync(work, { recursive: true, force: true });
console.log(file);
