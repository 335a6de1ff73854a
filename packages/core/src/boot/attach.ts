/**
 * attach(): a handle on a VM some other process (or an earlier detached
 * boot) started, found through the registry (api.md §1.5). It can exec,
 * write files, stop and kill; it cannot see the VM's stdio or exit status.
 */
import { Readable, Writable } from "node:stream";
import { createExecApi, type ExecApi } from "../agent/index.js";
import { ErrorCode, RegistryError } from "../errors/index.js";
import type { OnLog } from "../log/events.js";
import type { RegistryEntry } from "../registry/entry.js";
import { entryStatus } from "../registry/entry.js";
import { runGc } from "../registry/gc.js";
import { findVm } from "../registry/list.js";
import { waitForExit } from "../registry/process-identity.js";
import { stopVm } from "../registry/stop.js";
import type { SnapshotEngine, SnapshotOptions, SnapshotResult } from "../snapshot/engine.js";
import { forkVm, type ForkOptions } from "../snapshot/fork.js";
import { snapshotVm } from "../snapshot/snapshot-vm.js";
import { registryOwner, sourceFromEntry } from "../snapshot/source.js";
import type { VmExit, VmHandle } from "./handle.js";
import { execLog } from "./launch-plan.js";

export interface AttachOptions {
  pid?: number;
  name?: string;
  /** Exec output through this handle (`exec-stdout` / `exec-stderr`) and snapshot phase timings. */
  onLog?: OnLog;
  /** Engines for snapshot/fork through this handle, before the registered ones. */
  engines?: readonly SnapshotEngine[];
}

export interface AttachedHandleOptions {
  onLog?: OnLog;
  engines?: readonly SnapshotEngine[];
}

const POLL_MS = 250;

export class AttachedVmHandle implements VmHandle {
  readonly pid: number;
  readonly name?: string;
  readonly stdin: Writable = new Writable({ write: (_c, _e, cb) => cb() });
  readonly stdout: Readable = Readable.from([]);
  readonly stderr: Readable = Readable.from([]);
  readonly exec: ExecApi["exec"];
  readonly execRaw: ExecApi["execRaw"];
  readonly execPty: ExecApi["execPty"];
  readonly writeFile: ExecApi["writeFile"];

  constructor(
    private readonly entry: RegistryEntry,
    private readonly opts: AttachedHandleOptions = {},
  ) {
    this.pid = entry.pid;
    if (entry.name !== undefined) this.name = entry.name;
    const api = createExecApi(entry.socketPath || undefined, execLog(opts.onLog));
    this.exec = api.exec;
    this.execRaw = api.execRaw;
    this.execPty = api.execPty;
    this.writeFile = api.writeFile;
  }

  /** Resolves when the VMM is gone. The exit status is not observable from here: `code` is -1. */
  async wait(): Promise<VmExit> {
    while (entryStatus(this.entry) === "alive") await new Promise((r) => setTimeout(r, POLL_MS));
    return { code: -1, signal: null, report: { milestones: [] } };
  }

  async kill(): Promise<void> {
    if (entryStatus(this.entry) === "alive") {
      try {
        process.kill(this.pid, "SIGKILL");
      } catch {
        // gone in the meantime
      }
      await waitForExit(this.pid, 10_000);
    }
    runGc({ pid: this.pid });
  }

  async stop(opts: { graceMs?: number } = {}): Promise<void> {
    await stopVm({ pid: this.pid }, opts);
  }

  async detach(): Promise<void> {}

  async output(): Promise<string> {
    return "";
  }

  async errorOutput(): Promise<string> {
    return "";
  }

  private source() {
    return sourceFromEntry(this.entry, registryOwner(this.entry, () => this.kill()));
  }

  snapshot(opts: SnapshotOptions): Promise<SnapshotResult> {
    return snapshotVm(this.source(), opts, this.opts);
  }

  fork(opts: ForkOptions = {}): Promise<VmHandle> {
    return forkVm(this.source(), opts, this.opts);
  }
}

export async function attach(opts: AttachOptions): Promise<VmHandle> {
  if (opts === null || typeof opts !== "object" || (opts.pid === undefined) === (opts.name === undefined)) {
    throw new RegistryError(ErrorCode.REGISTRY_VM_NOT_FOUND, "attach needs exactly one of { pid } or { name }");
  }
  const onLog = opts.onLog;
  // An attached handle sees no console: only exec output and snapshot phases reach onLog.
  const noConsole: OnLog | undefined = onLog && ((evt) => evt.source !== "guest-console" && onLog(evt));
  return new AttachedVmHandle(findVm(opts), { ...(noConsole ? { onLog: noConsole } : {}), ...(opts.engines ? { engines: opts.engines } : {}) });
}
