/**
 * boot(): options → a warm restore of the cached idle guest, or a cold
 * boot (which fills that cache) → VmHandle. Every check that can fail on
 * user input runs before any VMM starts.
 */
import { BootError, ErrorCode } from "../errors/index.js";
import { detectKvm, type KvmKind } from "../host/kvm.js";
import { readImageConfig } from "../image/image-config.js";
import { PhaseTimer } from "../log/events.js";
import { resolveGuestAgent, resolveGuestInit, resolveKernel, resolveVmmBinary } from "../native/resolve.js";
import { checkName } from "../registry/names.js";
import type { SnapshotEngine } from "../snapshot/engine.js";
import { findEngine, knownEngines } from "../snapshot/engines.js";
import { bootCold, type ResolvedBoot } from "./boot-cold.js";
import { bootWarm } from "./boot-warm.js";
import { guestIdentity } from "./guest-identity.js";
import type { VmHandle } from "./handle.js";
import { PVM_DEFAULT_MEMORY_MIB } from "./memory.js";
import { checkImage, resolveCommand, resolveCpus, resolveMemory, resolveTimeout, type BootOptions } from "./options.js";
import { claimFill, waitForFill, type FillClaim } from "../warm/index.js";
import { dropWarm, findWarm, isEntryProblem, warmPlan, warmRefusal, type WarmPlan } from "./warm.js";

const GiB = 1024 ** 3;
let pvmNoticeShown = false;

function noticePvmMemoryCap(): void {
  if (pvmNoticeShown || process.env.STASIS_QUIET === "1") return;
  pvmNoticeShown = true;
  process.stderr.write(
    `stasis: this host's KVM is kvm_pvm (guest kernel code is emulated), so guest memory defaults to ${PVM_DEFAULT_MEMORY_MIB} MiB instead of half the host; pass memory (--memory) to choose\n`,
  );
}

/** On a terminal, say why this boot takes long: it boots cold to fill the cache. */
function noticeColdFill(kvm: KvmKind): void {
  if (!process.stderr.isTTY || process.env.STASIS_QUIET === "1") return;
  const here = kvm === "pvm" ? " (about half a minute on this host)" : "";
  process.stderr.write(`stasis: first boot of this image and VM shape: booting cold${here}, then caching it so later boots restore in a moment\n`);
}

/** On a terminal, say why this boot waits: another boot is filling the cache entry it needs. */
function noticeWaitingForFill(pid: number): void {
  if (!process.stderr.isTTY || process.env.STASIS_QUIET === "1") return;
  process.stderr.write(`stasis: another boot (process ${pid}) is caching this image and VM shape; waiting for it instead of booting cold too\n`);
}

/** The engine a booting VM will snapshot with; undefined when none applies (no default installed). */
export function bootEngine(opts: Pick<BootOptions, "snapshotEngine" | "engines">): SnapshotEngine | undefined {
  if (opts.snapshotEngine !== undefined) {
    if (typeof opts.snapshotEngine !== "string" || opts.snapshotEngine === "") {
      throw new TypeError(`snapshotEngine must be an engine name, got ${JSON.stringify(opts.snapshotEngine)}`);
    }
    return findEngine(opts.snapshotEngine, opts.engines);
  }
  // vmstate is the default where the VMM supports it (x86_64 Linux/KVM today).
  if (process.platform !== "linux" || process.arch !== "x64") return undefined;
  return knownEngines(opts.engines).find((e) => e.name === "vmstate");
}

export function requireKvm(kvm: KvmKind): void {
  if (kvm === "none") {
    throw new BootError(
      ErrorCode.BOOT_KVM_UNAVAILABLE,
      "/dev/kvm is missing or not accessible: enable virtualisation (KVM) on this host or add your user to the kvm group",
    );
  }
}

function checkWarmOption(warm: unknown): void {
  if (warm !== undefined && typeof warm !== "boolean") {
    throw new TypeError(`warm must be true or false, got ${JSON.stringify(warm)}`);
  }
}

/** Validates everything the caller gave; nothing is started or written. */
function resolveBoot(opts: BootOptions, phases: PhaseTimer): ResolvedBoot {
  const kvm = detectKvm();
  const image = checkImage(opts);
  const name = opts.name !== undefined ? checkName(opts.name) : undefined;
  checkWarmOption(opts.warm);
  const engine = bootEngine(opts);
  const baked = phases.time("image-config", () => readImageConfig(image));
  const command = resolveCommand(opts, baked);
  const memory = resolveMemory(opts, kvm);
  const cpus = resolveCpus(opts.cpus, kvm);
  const timeoutMs = resolveTimeout(opts.timeoutMs, kvm);
  const vmmCwd = opts.cwd ?? process.cwd();
  const kernel = resolveKernel(opts.kernel, vmmCwd);
  const binary = resolveVmmBinary(opts.binary, vmmCwd);
  const init = resolveGuestInit();
  const agent = resolveGuestAgent();
  requireKvm(kvm);
  if (memory.capped) noticePvmMemoryCap();
  return {
    kvm,
    image,
    ...(name !== undefined ? { name } : {}),
    ...(engine !== undefined ? { engine } : {}),
    command,
    memory,
    cpus,
    timeoutMs,
    vmmCwd,
    kernel,
    binary,
    init,
    agent,
    upperBytes: opts.rootDiskSizeBytes ?? 2 * GiB,
    identity: guestIdentity(name),
  };
}

function planWarm(r: ResolvedBoot, opts: BootOptions, phases: PhaseTimer): WarmPlan | undefined {
  if (warmRefusal(opts, r.engine) !== undefined) return undefined;
  return phases.time("warm.key", () =>
    warmPlan(
      {
        vmm: r.binary,
        kernel: r.kernel,
        init: r.init,
        agent: r.agent,
        image: r.image,
        memoryMib: r.memory.mib,
        cpus: r.cpus,
        upperBytes: r.upperBytes,
        kvm: r.kvm,
      },
      opts,
    ),
  );
}

/**
 * A warm VM from the cache, or the claim to fill the key by booting cold.
 * When another boot is filling the key, waits for its entry (rather than
 * booting cold beside it) up to the default readiness bound; past that,
 * or when a fill could not be claimed, the boot goes cold without a claim
 * (publishing stays safe: one entry wins).
 */
async function warmOrClaim(warm: WarmPlan, r: ResolvedBoot, opts: BootOptions, phases: PhaseTimer): Promise<{ handle: VmHandle } | { claim?: FillClaim }> {
  const deadline = Date.now() + (resolveTimeout(undefined, r.kvm) ?? 0);
  let waitedMs = 0;
  for (;;) {
    const entry = phases.time("warm.lookup", () => findWarm(warm));
    if (entry) {
      try {
        const handle = await bootWarm(entry, r, opts, phases);
        opts.onLog?.({ source: "warm", event: "hit", key: warm.key });
        opts.onLog?.(phases.event());
        return { handle };
      } catch (err) {
        if (!isEntryProblem(err)) throw err;
        dropWarm(entry, err, opts.onLog);
      }
    }
    const claimed = claimFill(warm.key);
    if ("claim" in claimed) return { claim: claimed.claim };
    if (Date.now() >= deadline) return {};
    if (waitedMs === 0) {
      opts.onLog?.({ source: "warm", event: "waiting", key: warm.key, message: `process ${claimed.heldBy.pid} is filling this entry` });
      noticeWaitingForFill(claimed.heldBy.pid);
    }
    const t0 = performance.now();
    const outcome = await waitForFill(warm.key, { timeoutMs: deadline - Date.now() });
    waitedMs += performance.now() - t0;
    phases.record("warm.wait", waitedMs);
    if (outcome === "timeout") return {};
  }
}

export async function boot(opts: BootOptions = {}): Promise<VmHandle> {
  const phases = new PhaseTimer("boot");
  const r = resolveBoot(opts, phases);
  const warm = planWarm(r, opts, phases);
  let claim: FillClaim | undefined;
  if (warm) {
    const got = await warmOrClaim(warm, r, opts, phases);
    if ("handle" in got) return got.handle;
    claim = got.claim;
    opts.onLog?.({ source: "warm", event: "miss", key: warm.key });
    noticeColdFill(r.kvm);
  }
  try {
    const handle = await bootCold(r, opts, phases, warm && { ...warm, ...(claim ? { claim } : {}) });
    opts.onLog?.(phases.event());
    return handle;
  } finally {
    claim?.release();
  }
}
