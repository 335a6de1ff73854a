/** The handle boot() returns for one running VMM process. */
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import os from "node:os";
import type { Readable, Writable } from "node:stream";
import { BootError, ErrorCode } from "../errors/index.js";
import { TailBuffer } from "../util/tail-buffer.js";
import type { ExecApi } from "../agent/index.js";
import type { OnLog } from "../log/events.js";
import type { RegistryEntry } from "../registry/entry.js";
import type { SnapshotEngine, SnapshotOptions, SnapshotResult, SnapshotSource } from "../snapshot/engine.js";
import { forkVm, type ForkOptions } from "../snapshot/fork.js";
import { snapshotVm } from "../snapshot/snapshot-vm.js";
import { sourceFromEntry } from "../snapshot/source.js";
import { untrackVm } from "./cleanup.js";
import { sendControl } from "./control-client.js";
import type { VmmReport } from "./vmm-report.js";
import { ReportReader } from "./vmm-report.js";

export interface VmExit {
  /** The guest command's exit status (128 + n when signal n killed the VMM). */
  code: number;
  /** The signal that killed the VMM process, if one did. */
  signal: NodeJS.Signals | null;
  /** What the VMM reported: boot milestones, exit reason, its own counters. */
  report: VmmReport;
}

/** What every handle can do, whether it booted the VM or attached to it. */
export interface VmHandle extends ExecApi {
  readonly pid: number;
  /** Registry name, if the VM has one. */
  readonly name?: string;
  readonly stdin: Writable;
  /** The guest command's stdout. */
  readonly stdout: Readable;
  /** The guest console: kernel messages, /init diagnostics, the command's stderr. */
  readonly stderr: Readable;
  /** Resolves when the VMM exits; rejects with BOOT_TIMEOUT / BOOT_VMM_FAILED. */
  wait(): Promise<VmExit>;
  /** Asks the VMM to shut down; SIGKILLs it after `graceMs` (default 2 s). Resolves when it is gone. */
  stop(opts?: { graceMs?: number }): Promise<void>;
  /** SIGKILL; resolves when the process is really gone. */
  kill(): Promise<void>;
  /**
   * Lets go of the VM: it keeps running (also after this process exits) and
   * stays attachable. Local streams are closed; wait()/output() no longer
   * follow it.
   */
  detach(): Promise<void>;
  /** The last ~1 MiB of stdout / console output. */
  output(): Promise<string>;
  errorOutput(): Promise<string>;
  /** Freezes the VM into a bundle directory (api.md §4.2); by default the VM then exits. */
  snapshot(opts: SnapshotOptions): Promise<SnapshotResult>;
  /** A sibling VM that continues from this instant; this VM keeps running (api.md §4.6). */
  fork(opts?: ForkOptions): Promise<VmHandle>;
}

export interface HandleParts {
  child: ChildProcess & { pid: number };
  /** The VM's registry entry (name, paths, engine). */
  entry: RegistryEntry;
  engines?: readonly SnapshotEngine[];
  /** The boot's onLog: snapshot phase events go here too (B106). */
  onLog?: OnLog;
  exec: ExecApi;
  reportStream: Readable;
  /** Removed once the VMM has exited: the run dir and anything listed with it. */
  cleanupPaths: string[];
  controlSocket: string;
  timeoutMs: number | null;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  onConsole?: (chunk: Buffer) => void;
  onExit?: (report: VmmReport, code: number | null, signal: NodeJS.Signals | null) => void;
  /** Runs once the VM is let go (detach()). */
  onDetach?: () => void;
}

function signalNumber(signal: NodeJS.Signals): number {
  return os.constants.signals[signal] ?? 0;
}

export class VmProcessHandle implements VmHandle {
  readonly pid: number;
  readonly name?: string;
  readonly exec: ExecApi["exec"];
  readonly execRaw: ExecApi["execRaw"];
  readonly execPty: ExecApi["execPty"];
  readonly writeFile: ExecApi["writeFile"];
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  private readonly stdoutTail = new TailBuffer();
  private readonly stderrTail = new TailBuffer();
  private readonly reader = new ReportReader();
  private readonly exited: Promise<VmExit>;
  private readonly done: Promise<void>;
  private timer: NodeJS.Timeout | undefined;
  private timedOut = false;
  private gone = false;
  private detached = false;

  constructor(private readonly parts: HandleParts) {
    const { child } = parts;
    this.pid = child.pid;
    if (parts.entry.name !== undefined) this.name = parts.entry.name;
    this.exec = parts.exec.exec;
    this.execRaw = parts.exec.execRaw;
    this.execPty = parts.exec.execPty;
    this.writeFile = parts.exec.writeFile;
    this.stdin = child.stdin!;
    this.stdout = child.stdout!;
    this.stderr = child.stderr!;
    this.stdin.on("error", () => {});
    this.stdout.on("data", (c: Buffer) => {
      this.stdoutTail.push(c);
      parts.onStdout?.(c);
    });
    this.stderr.on("data", (c: Buffer) => {
      this.stderrTail.push(c);
      parts.onStderr?.(c);
      parts.onConsole?.(c);
    });
    parts.reportStream.on("data", (c: Buffer) => this.reader.push(c));
    parts.reportStream.on("error", () => {});

    const streamsDone = Promise.all(
      [this.stdout, this.stderr, parts.reportStream].map(
        (s) => new Promise<void>((resolve) => (s.readableEnded || s.destroyed ? resolve() : s.once("close", () => resolve()))),
      ),
    );
    const processDone = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    this.exited = (async () => {
      const { code, signal } = await processDone;
      // Let the last bytes of output and the final report arrive.
      await Promise.race([streamsDone, new Promise((r) => setTimeout(r, 2000))]);
      this.reader.end();
      this.finish();
      parts.onExit?.(this.reader.report, code, signal);
      return this.toExit(code, signal);
    })();
    this.done = this.exited.then(
      () => undefined,
      () => undefined,
    );
    if (parts.timeoutMs !== null) {
      this.timer = setTimeout(() => {
        this.timedOut = true;
        void this.kill();
      }, parts.timeoutMs);
      this.timer.unref();
    }
  }

  private finish(): void {
    this.gone = true;
    if (this.timer) clearTimeout(this.timer);
    untrackVm(this.pid);
    for (const p of this.parts.cleanupPaths) rmSync(p, { recursive: true, force: true });
  }

  private toExit(code: number | null, signal: NodeJS.Signals | null): VmExit {
    const report = this.reader.report;
    if (this.timedOut) {
      throw new BootError(
        ErrorCode.BOOT_TIMEOUT,
        `the VM did not finish within ${this.parts.timeoutMs} ms and was killed; raise timeoutMs or pass null to wait without a deadline`,
      );
    }
    if (report.error || report.exit?.reason === "error") {
      const detail = report.error ? `${report.error.code}: ${report.error.message}` : "the VMM reported an error";
      throw new BootError(
        ErrorCode.BOOT_VMM_FAILED,
        `the VM failed before its command reported an exit status (${detail}); the console tail is in errorOutput()`,
      );
    }
    if (signal !== null) return { code: 128 + signalNumber(signal), signal, report };
    if ((report.exit?.reason === "guest" || report.exit?.reason === "snapshot") && report.exit.status !== undefined) {
      return { code: report.exit.status, signal: null, report };
    }
    if (report.exit === undefined && code !== 0) {
      throw new BootError(
        ErrorCode.BOOT_VMM_FAILED,
        `the VMM exited with status ${code} without reporting why; its stderr tail:\n${this.stderrTail.toString().slice(-2000)}`,
      );
    }
    return { code: code ?? 0, signal: null, report };
  }

  wait(): Promise<VmExit> {
    return this.exited;
  }

  async kill(): Promise<void> {
    if (!this.gone) {
      try {
        process.kill(this.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await this.done;
  }

  async detach(): Promise<void> {
    if (this.gone || this.detached) return;
    // The VMM was started tied to this process (parent-death signal); it
    // must drop that tie itself before we may go.
    await sendControl(this.parts.controlSocket, { cmd: "detach" }).catch((cause: unknown) => {
      throw new BootError(ErrorCode.BOOT_VMM_FAILED, "the VMM did not accept the detach request; the VM is still tied to this process", { cause });
    });
    this.detached = true;
    if (this.timer) clearTimeout(this.timer);
    untrackVm(this.pid);
    this.parts.onDetach?.();
    this.parts.child.unref();
    for (const s of [this.stdin, this.stdout, this.stderr, this.parts.reportStream]) {
      (s as unknown as { unref?: () => void }).unref?.();
      s.destroy();
    }
  }

  async stop(opts: { graceMs?: number } = {}): Promise<void> {
    if (this.gone) return this.done;
    await sendControl(this.parts.controlSocket, { cmd: "shutdown" }).catch(() => {
      try {
        process.kill(this.pid, "SIGTERM");
      } catch {
        // already gone
      }
    });
    const grace = setTimeout(() => void this.kill(), opts.graceMs ?? 2000);
    await this.done;
    clearTimeout(grace);
  }

  async output(): Promise<string> {
    return this.stdoutTail.toString();
  }

  /** This VM as an engine sees it; gone = the exit hook has unregistered it and removed its files. */
  private source(): SnapshotSource {
    return sourceFromEntry(this.parts.entry, {
      gone: async (ms) => {
        let t: NodeJS.Timeout | undefined;
        await Promise.race([
          this.done,
          new Promise<never>((_, reject) => {
            t = setTimeout(() => reject(new Error(`VM ${this.pid} did not exit within ${ms} ms`)), ms);
          }),
        ]).finally(() => clearTimeout(t));
      },
      kill: () => this.kill(),
    });
  }

  snapshot(opts: SnapshotOptions): Promise<SnapshotResult> {
    return snapshotVm(this.source(), opts, { engines: this.parts.engines, onLog: this.parts.onLog });
  }

  fork(opts: ForkOptions = {}): Promise<VmHandle> {
    return forkVm(this.source(), opts, { engines: this.parts.engines, onLog: this.parts.onLog });
  }

  async errorOutput(): Promise<string> {
    return this.stderrTail.toString();
  }
}

