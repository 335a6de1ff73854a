#!/usr/bin/env node
// Snapshot / restore / fork benchmark (issue 4 targets), on one VM whose
// guest holds `--touch-mib` MiB of non-zero data in its page cache:
//   - snapshot request → bundle complete: the VMM's own timings (pause,
//     state, memory, disks, write) and the runtime's elapsed time;
//   - restore: VMM start → vCPUs running (the VMM's `restored` event, from
//     a bare VMM started on the bundle), and restore() → first exec reply;
//   - fork: fork() → the child's vCPUs running, and → first exec reply;
//   - density: host RSS of N forks of one VM, and of N restores of one
//     bundle (which share the bundle's page cache), per VM and in total.
// Guest-kernel work is emulated here (shared/design/kvm-here.md), so the
// figures that count are the VMM-side ones; wall times are reported too.
//   pnpm bench:snapshot [--memory 256] [--touch-mib 100] [--forks 8]
// Writes bench/results/snapshot-<timestamp>.json and prints a summary.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadRuntime, root, round, rss, writeResult } from "./lib.mjs";

const rt = await loadRuntime();

const { values: opt } = parseArgs({
  options: {
    memory: { type: "string", default: "256" },
    "touch-mib": { type: "string", default: "100" },
    forks: { type: "string", default: "8" },
  },
});
const memoryMib = Number(opt.memory);
const touchMib = Number(opt["touch-mib"]);
const forks = Number(opt.forks);
if (rt.detectKvm() === "none") {
  console.error("bench: /dev/kvm is not usable here");
  process.exit(1);
}

const work = mkdtempSync(path.join(os.tmpdir(), "stasis-bench-snap-"));
const log = (...a) => console.error("bench:", ...a);

/** The base image plus /blob: `mib` MiB of random bytes (cached by size). */
function benchImage(mib) {
  const dir = path.join(os.homedir(), ".cache/stasis/bench");
  const out = path.join(dir, `rootfs-blob-${mib}m.tar.gz`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(path.join(dir, ".build-"));
  const run = (cmd, args) => {
    const r = spawnSync(cmd, args, { stdio: ["ignore", "ignore", "inherit"] });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed`);
  };
  run("sh", ["-c", `gzip -dc '${rt.resolveBaseRootfs()}' > '${tmp}/img.tar'`]);
  run("sh", ["-c", `head -c ${mib}M /dev/urandom > '${tmp}/blob'`]);
  run("tar", ["-rf", `${tmp}/img.tar`, "-C", tmp, "--owner=0", "--group=0", "blob"]);
  run("sh", ["-c", `gzip -1 < '${tmp}/img.tar' > '${out}.part' && mv '${out}.part' '${out}'`]);
  rmSync(tmp, { recursive: true, force: true });
  return out;
}

/** Starts a bare VMM on `bundle` and resolves with its `restored` event's ms. */
function bareRestore(bundle, rootImg) {
  const run = mkdtempSync(path.join(work, "bare-"));
  const upper = path.join(run, "upper.img");
  spawnSync("cp", ["--sparse=always", path.join(bundle, "disk-1.img"), upper]);
  const vmm = spawn(
    rt.resolveVmmBinary(),
    ["--restore", bundle, "--disk", `${rootImg}:ro`, "--disk", upper, "--vsock", path.join(run, "v.sock"), "--report-fd", "3"],
    { stdio: ["ignore", "ignore", "ignore", "pipe"] },
  );
  return new Promise((resolve, reject) => {
    let buf = "";
    vmm.stdio[3].on("data", (c) => {
      buf += c;
      const m = /"event":"restored","ms":([\d.]+)/.exec(buf);
      if (m) {
        vmm.kill("SIGKILL");
        resolve(Number(m[1]));
      }
    });
    vmm.on("exit", () => reject(new Error(`the VMM exited before restoring: ${buf}`)));
  });
}

const timeIt = async (f) => {
  const t = performance.now();
  const value = await f();
  return { value, ms: performance.now() - t };
};

const image = benchImage(touchMib);
log(`image ${image}`);
const booted = await timeIt(() =>
  rt.boot({ image, memory: memoryMib, detached: true, cmd: ["/bin/sh", "-c", "while :; do sleep 3600; done"] }),
);
const vm = booted.value;
log(`booted in ${round(booted.ms / 1000)} s (pid ${vm.pid})`);
const touched = await timeIt(() => vm.exec("cat /blob > /dev/null"));
log(`guest read ${touchMib} MiB into its page cache in ${round(touched.ms / 1000)} s`);

// Snapshot (source left running), three times; the bundle of the last is kept.
const snaps = [];
for (let i = 0; i < 3; i++) {
  const dir = path.join(work, `snap-${i}`);
  const r = await vm.snapshot({ outDir: dir, leaveRunning: true });
  snaps.push({ elapsedMs: round(r.elapsedMs), memoryMiB: round((r.memoryBytes ?? 0) / 2 ** 20), vmm: r.timings });
  if (i < 2) rmSync(dir, { recursive: true, force: true });
}
const bundle = path.join(work, "snap-2");
log(`snapshot: VMM total ${snaps.map((s) => s.vmm?.totalMs).join(", ")} ms; runtime ${snaps.map((s) => s.elapsedMs).join(", ")} ms`);

// Restore: the bare VMM, then the runtime with a first exec.
const rootImg = path.join(bundle, "rootfs.img");
const bare = [];
for (let i = 0; i < 5; i++) bare.push(await bareRestore(bundle, rootImg));
log(`bare restore → vCPUs running: ${bare.join(", ")} ms`);
/** The phase timings an operation logs (onLog), by name. */
function phaseLog() {
  const phases = {};
  const onLog = (e) => {
    if (e.phases) for (const [k, v] of e.phases instanceof Map ? e.phases : Object.entries(e.phases)) phases[`${e.kind}.${k}`] = round(v, 2);
  };
  return { phases, onLog };
}
/**
 * Call → the new VM's vCPUs running: the call minus the hand-over that
 * follows the VMM's `restored` event (the first ping, retries included,
 * and the thaw), which is the guest's work.
 */
const untilRunning = (callMs, p) => round(callMs - (p["restore.handover.ping"] ?? 0) - (p["restore.handover.thaw"] ?? 0));
const restoreLog = phaseLog();
const restored = await timeIt(() => rt.restore({ snapDir: bundle, detached: true, onLog: restoreLog.onLog }));
const firstExec = await timeIt(() => restored.value.exec("true"));
log(`restore() ${round(restored.ms)} ms (${untilRunning(restored.ms, restoreLog.phases)} ms until its vCPUs ran), then first exec ${round(firstExec.ms)} ms`);

// Fork: timing of three, then density of N.
const source = vm;
const forkRuns = [];
for (let i = 0; i < 3; i++) {
  const forkLog = phaseLog();
  const f = await timeIt(() => source.fork({ detached: true, onLog: forkLog.onLog }));
  const exec = await timeIt(() => f.value.exec("true"));
  forkRuns.push({ forkCallMs: round(f.ms), callToChildVcpusRunningMs: untilRunning(f.ms, forkLog.phases), firstExecMs: round(exec.ms), phases: forkLog.phases });
  log(`fork() ${round(f.ms)} ms (${untilRunning(f.ms, forkLog.phases)} ms until the child's vCPUs ran), then first exec ${round(exec.ms)} ms`);
  await f.value.stop();
}

const rssOf = (handles) => handles.map((h) => ({ pid: h.pid, ...rss(h.pid) }));
const sourceBefore = rss(vm.pid);
const forked = [];
for (let i = 0; i < forks; i++) {
  const h = await source.fork({ detached: true });
  await h.exec("true");
  forked.push(h);
}
const forkRss = rssOf(forked);
const restores = [];
for (let i = 0; i < forks; i++) {
  const h = await rt.restore({ snapDir: bundle, detached: true });
  await h.exec("true");
  restores.push(h);
}
const restoreRss = rssOf(restores);
const sum = (rows, k) => rows.reduce((a, r) => a + r[k], 0);
log(`${forks} forks: RSS ${round(sum(forkRss, "rss") / 1024)} MiB in total; ${forks} restores of one bundle: ${round(sum(restoreRss, "rss") / 1024)} MiB`);

for (const h of [...forked, ...restores, restored.value]) await h.stop().catch(() => {});
await source.stop();

const out = {
  bench: "snapshot",
  at: new Date().toISOString(),
  host: { cpus: os.cpus().length, kernel: os.release(), kvm: rt.detectKvm() },
  guest: { memoryMib, touchMib, guestReadMs: round(touched.ms) },
  bootMs: round(booted.ms),
  snapshot: snaps,
  restore: {
    bareVmmToVcpusRunningMs: bare,
    restoreCallMs: round(restored.ms),
    callToVcpusRunningMs: untilRunning(restored.ms, restoreLog.phases),
    firstExecMs: round(firstExec.ms),
    phases: restoreLog.phases,
  },
  fork: forkRuns,
  density: {
    sourceRssKiB: sourceBefore,
    forks: { perVmKiB: forkRss, totalRssKiB: sum(forkRss, "rss"), totalAnonKiB: sum(forkRss, "anon") },
    restoresOfOneBundle: { perVmKiB: restoreRss, totalRssKiB: sum(restoreRss, "rss"), totalAnonKiB: sum(restoreRss, "anon") },
  },
};
const file = writeResult("snapshot", out);
rmSync(work, { recursive: true, force: true });
console.log(JSON.stringify(out, null, 2));
console.error(`bench: wrote ${path.relative(root, file)}`);
