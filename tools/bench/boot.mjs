#!/usr/bin/env node
// Boot benchmark: stasis-vmm and QEMU's microvm machine, side by side in one
// run, on the same kernel, initramfs and root disk. For each run: VMM
// process start → guest /init up (milestone 1), → command exit; plus, for
// stasis, time inside KVM_RUN vs outside and exits by reason (from the VMM's
// report), and for QEMU exits by reason (QEMU's kvm_run_exit trace).
//   pnpm bench [--runs 5] [--memory 128] [--cpus 1] [--only stasis|qemu]
// Writes bench/results/boot-<timestamp>.json and prints a summary.
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const core = await import(path.join(root, "packages/core/dist/index.js"));

const { values: opt } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    memory: { type: "string", default: "128" },
    cpus: { type: "string", default: "1" },
    only: { type: "string" },
    timeout: { type: "string", default: "600" },
  },
});
const runs = Number(opt.runs);
const memory = Number(opt.memory);
const cpus = Number(opt.cpus);
const timeoutMs = Number(opt.timeout) * 1000;
const kvm = core.detectKvm();
if (kvm === "none") {
  console.error("bench: /dev/kvm is not usable here");
  process.exit(1);
}

const work = mkdtempSync(path.join(os.tmpdir(), "stasis-bench-"));
process.on("exit", () => rmSync(work, { recursive: true, force: true }));

const kernel = core.resolveKernel();
const vmm = core.resolveVmmBinary();
const rootImg = core.ensureRootfsImage(core.resolveBaseRootfs());
const initrd = path.join(work, "initramfs.cpio");
writeFileSync(
  initrd,
  core.buildBootInitramfs(core.resolveGuestInit(), { cmd: ["true"], env: {}, cwd: "/", root: "/dev/vda", upper: "/dev/vdb" }),
);
const mke2fs = core.resolveMke2fs();

function freshUpper(name) {
  const file = path.join(work, name);
  rmSync(file, { force: true });
  execFileSync("truncate", ["-s", "256M", file]);
  execFileSync(mke2fs, ["-q", "-F", "-t", "ext4", "-O", "^has_journal", "-m", "0", file]);
  return file;
}

function rssOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)?.[1] ?? NaN);
    return { vmRssKib: kib("VmRSS"), anonKib: kib("RssAnon"), fileKib: kib("RssFile"), shmemKib: kib("RssShmem") };
  } catch {
    return undefined;
  }
}

function watch(child, label) {
  const timer = setTimeout(() => {
    console.error(`bench: ${label} run exceeded ${timeoutMs / 1000}s, killing it`);
    child.kill("SIGKILL");
  }, timeoutMs);
  return new Promise((resolve) =>
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, t: performance.now() });
    }),
  );
}

async function runStasis(i) {
  const upper = freshUpper(`upper-stasis-${i}.img`);
  const t0 = performance.now();
  const child = spawn(
    vmm,
    ["--kernel", kernel, "--initrd", initrd, "--memory", String(memory), "--cpus", String(cpus),
     "--disk", `${rootImg}:ro`, "--disk", upper, "--report-fd", "3"],
    { stdio: ["ignore", "pipe", "pipe", "pipe"] },
  );
  const milestones = {};
  let stats;
  let rssAtInit;
  let pending = "";
  let console_ = "";
  child.stderr.on("data", (c) => (console_ += c));
  child.stdout.on("data", () => {});
  child.stdio[3].on("data", (c) => {
    pending += c;
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let e;
      try { e = JSON.parse(line); } catch { continue; }
      if (e.event === "milestone") {
        milestones[e.id] = performance.now() - t0;
        if (e.id === 1) rssAtInit = rssOf(child.pid);
      } else if (e.event === "stats") stats = e;
    }
  });
  const done = await watch(child, "stasis");
  return {
    ok: done.code === 0 && milestones[1] !== undefined,
    exitCode: done.code,
    toInitMs: milestones[1],
    toCommandMs: milestones[2],
    toExitMs: done.t - t0,
    inKvmRunMs: stats?.inKvmRunMs,
    outsideKvmRunMs: stats?.outsideKvmRunMs,
    exits: stats?.exits,
    rssAtInit,
    consoleTail: done.code === 0 ? undefined : console_.slice(-1500),
  };
}

function qemuCmdline() {
  // The same command line our VMM builds, minus the virtio-mmio devices,
  // which QEMU's microvm adds itself.
  const extra = kvm === "pvm" ? " stasis_pvm" : "";
  return `console=ttyS0 8250.nr_uarts=2 reboot=t panic=-1 quiet loglevel=3 pci=off rdinit=/init${extra}`;
}

// The CPU features kvm_pvm cannot run (same list as the VMM's compat table).
const PVM_HIDDEN = ["xsave", "cx16", "popcnt", "fsgsbase", "rdpid", "invpcid", "pcid", "rdrand", "rdseed", "smap", "smep", "umip"];

async function runQemu(i) {
  const upper = freshUpper(`upper-qemu-${i}.img`);
  const traceLog = path.join(work, `qemu-trace-${i}.log`);
  const consoleLog = path.join(work, `qemu-console-${i}.log`);
  const cpu = kvm === "pvm" ? `host,${PVM_HIDDEN.map((f) => `-${f}`).join(",")},-arch-capabilities` : "host";
  const args = [
    "-M", "microvm,x-option-roms=off,rtc=off,acpi=off,pit=on,pic=on,isa-serial=on",
    "-enable-kvm", "-cpu", cpu, "-m", String(memory), "-smp", String(cpus),
    "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
    "-kernel", kernel, "-initrd", initrd, "-append", qemuCmdline(),
    // microvm has only COM1: add COM2 (the command's stdout) by hand.
    "-chardev", `file,id=con,path=${consoleLog}`, "-serial", "chardev:con",
    "-chardev", "null,id=out", "-device", "isa-serial,chardev=out,iobase=0x2f8,irq=3",
    "-chardev", "stdio,id=ms", "-device", "isa-debugcon,iobase=0xf5,chardev=ms",
    "-device", "isa-debug-exit,iobase=0xf4,iosize=1",
    "-drive", `id=root,file=${rootImg},format=raw,if=none,readonly=on`, "-device", "virtio-blk-device,drive=root",
    "-drive", `id=upper,file=${upper},format=raw,if=none`, "-device", "virtio-blk-device,drive=upper",
    "-trace", "kvm_run_exit", "-D", traceLog,
  ];
  const t0 = performance.now();
  const child = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "pipe", "pipe"] });
  const milestones = {};
  let rssAtInit;
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  child.stdout.on("data", (c) => {
    for (const b of c) {
      if (milestones[b] === undefined) milestones[b] = performance.now() - t0;
      if (b === 1 && rssAtInit === undefined) rssAtInit = rssOf(child.pid);
    }
  });
  const done = await watch(child, "qemu");
  // isa-debug-exit: QEMU exits with (status << 1) | 1.
  const guestStatus = typeof done.code === "number" && done.code % 2 === 1 ? done.code >> 1 : undefined;
  const exits = {};
  if (existsSync(traceLog)) {
    for (const m of readFileSync(traceLog, "utf8").matchAll(/kvm_run_exit .*reason (\d+)/g)) {
      const name = KVM_EXIT_NAMES[m[1]] ?? `reason${m[1]}`;
      exits[name] = (exits[name] ?? 0) + 1;
    }
  }
  return {
    ok: guestStatus === 0 && milestones[1] !== undefined,
    exitCode: done.code,
    guestStatus,
    toInitMs: milestones[1],
    toCommandMs: milestones[2],
    toExitMs: done.t - t0,
    exits,
    rssAtInit,
    consoleTail: guestStatus === 0 ? undefined : (existsSync(consoleLog) ? readFileSync(consoleLog, "utf8").slice(-1500) : "") + stderr.slice(-500),
  };
}

const KVM_EXIT_NAMES = { 2: "io", 5: "hlt", 6: "mmio", 8: "shutdown", 9: "fail_entry", 10: "intr", 17: "internal_error", 24: "system_event" };

function summarise(list, key) {
  const xs = list.map((r) => r[key]).filter((x) => typeof x === "number").sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const r = (x) => Math.round(x * 10) / 10;
  return { min: r(xs[0]), median: r(xs[Math.floor((xs.length - 1) / 2)]), max: r(xs[xs.length - 1]), n: xs.length };
}

const results = { stasis: [], qemu: [] };
for (let i = 0; i < runs; i++) {
  if (opt.only !== "qemu") {
    const r = await runStasis(i);
    results.stasis.push(r);
    console.error(`bench: stasis run ${i + 1}/${runs}: /init ${r.toInitMs?.toFixed(0)} ms, exit ${r.toExitMs.toFixed(0)} ms, outside KVM_RUN ${r.outsideKvmRunMs?.toFixed(1)} ms${r.ok ? "" : " (FAILED)"}`);
  }
  if (opt.only !== "stasis") {
    const r = await runQemu(i);
    results.qemu.push(r);
    console.error(`bench: qemu   run ${i + 1}/${runs}: /init ${r.toInitMs?.toFixed(0)} ms, exit ${r.toExitMs.toFixed(0)} ms${r.ok ? "" : " (FAILED)"}`);
  }
}

const summary = {};
for (const [name, list] of Object.entries(results)) {
  if (list.length === 0) continue;
  summary[name] = {
    ok: list.filter((r) => r.ok).length,
    runs: list.length,
    toInitMs: summarise(list, "toInitMs"),
    toCommandMs: summarise(list, "toCommandMs"),
    toExitMs: summarise(list, "toExitMs"),
    inKvmRunMs: summarise(list, "inKvmRunMs"),
    outsideKvmRunMs: summarise(list, "outsideKvmRunMs"),
  };
}
if (summary.stasis?.toExitMs && summary.qemu?.toExitMs) {
  summary.ratio = {
    toInit: +(summary.stasis.toInitMs.median / summary.qemu.toInitMs.median).toFixed(3),
    toExit: +(summary.stasis.toExitMs.median / summary.qemu.toExitMs.median).toFixed(3),
  };
}

const out = {
  benchmark: "boot",
  date: new Date().toISOString(),
  host: { kvm, cpus: os.cpus().length, memGiB: Math.round(os.totalmem() / 1024 ** 3), kernel: os.release() },
  config: { runs, memoryMib: memory, vcpus: cpus, command: "true", kernel, rootImg },
  summary,
  results,
};
const dir = path.join(root, "bench/results");
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `boot-${out.date.replace(/[:.]/g, "-")}.json`);
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(summary, null, 2));
console.error(`bench: wrote ${path.relative(root, file)}`);
