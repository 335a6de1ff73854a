/** Keeps the most recent `capBytes` of a byte stream. */
export const CONSOLE_TAIL_BYTES = 1024 * 1024;

export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly capBytes = CONSOLE_TAIL_BYTES) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - (this.chunks[0]?.length ?? 0) >= this.capBytes && this.chunks.length > 1) {
      this.size -= this.chunks.shift()!.length;
    }
  }

  toBuffer(): Buffer {
    const all = Buffer.concat(this.chunks);
    return all.length > this.capBytes ? all.subarray(all.length - this.capBytes) : all;
  }

  toString(): string {
    return this.toBuffer().toString("utf8");
  }
}
