/** Streaming log events (api.md §14). */

export interface ChunkLogEvent {
  source: "guest-console" | "exec-stdout" | "exec-stderr";
  cmd?: string;
  chunk: Buffer;
}

export interface PhaseLogEvent {
  source: "phase";
  kind: "boot" | "provision" | "snapshot" | "restore";
  /** phase → ms, in chronological order; sub-phases are `<parent>.<name>`. */
  phases: ReadonlyMap<string, number>;
  totalMs: number;
}

/** What the warm cache did for a boot (docs/warm-boot.md). */
export interface WarmLogEvent {
  source: "warm";
  /**
   * hit: restored from the cache; miss: booting cold, will fill; published /
   * lost: this boot's snapshot became the entry / another boot's did first;
   * waiting: another boot is filling the entry, this one waits for it (message: which process);
   * discarded: a bad entry was removed (message says why); fill-failed: the
   * VM runs on, uncached (message says why).
   */
  event: "hit" | "miss" | "waiting" | "published" | "lost" | "discarded" | "fill-failed";
  key: string;
  message?: string;
}

export type LogEvent = ChunkLogEvent | PhaseLogEvent | WarmLogEvent;
export type OnLog = (evt: LogEvent) => void;

/** Collects phase timings for one PhaseLogEvent. */
export class PhaseTimer {
  private readonly phases = new Map<string, number>();
  private readonly start = performance.now();

  constructor(private readonly kind: PhaseLogEvent["kind"]) {}

  record(name: string, ms: number): void {
    this.phases.set(name, Math.round(ms * 10) / 10);
  }

  time<T>(name: string, fn: () => T): T {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      this.record(name, performance.now() - t0);
    }
  }

  event(): PhaseLogEvent {
    return { source: "phase", kind: this.kind, phases: new Map(this.phases), totalMs: Math.round(performance.now() - this.start) };
  }
}
