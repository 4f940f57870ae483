import type { Entry, EntryMeta, PartWriter } from './cache-store.js';

/** Bytes per write to the store. */
const WRITE_BYTES = 1 << 20;

/**
 * Writes a download into an entry's parts as it streams, and marks the entry complete after its last byte. Bytes are
 * gathered into writes of up to WRITE_BYTES (each write is a round trip to the store: network-sized writes made
 * storing 4× slower in chromium), and one write stays in flight while the loader goes on.
 */
export class CopyWriter {
  /** Leading parts whole in the store. */
  kept: number;
  /** Whether the record says complete. */
  committed = false;
  private part: PartWriter | undefined;
  private gathered: Uint8Array | undefined;
  private gatheredBytes = 0;
  private inflight: Promise<void> = Promise.resolve();

  constructor(
    private readonly entry: Entry,
    private readonly meta: EntryMeta,
    firstPart: number,
  ) {
    this.kept = firstPart;
  }

  /** Writes `chunk`, the file's bytes from offset `at`; throws what the store throws (a full quota, say). */
  async write(chunk: Uint8Array, at: number): Promise<void> {
    const { size, partBytes } = this.meta;
    for (let offset = 0; offset < chunk.length; ) {
      const from = at + offset;
      if (from >= size) throw new Error(`the server sent more than the ${size} bytes its Content-Length announced`);
      const index = Math.floor(from / partBytes);
      const partEnd = Math.min((index + 1) * partBytes, size);
      this.part ??= await this.entry.writePart(index, partEnd - index * partBytes);
      // A fresh buffer per write: the store may read the one in flight until its write settles.
      this.gathered ??= new Uint8Array(Math.min(WRITE_BYTES, partEnd - from));
      const count = Math.min(chunk.length - offset, this.gathered.length - this.gatheredBytes);
      this.gathered.set(chunk.subarray(offset, offset + count), this.gatheredBytes);
      this.gatheredBytes += count;
      offset += count;
      if (this.gatheredBytes < this.gathered.length) continue;
      await this.inflight;
      this.inflight = this.part.write(this.gathered);
      this.inflight.catch(() => {}); // awaited before the next write or the close; this keeps it from being unhandled
      this.gathered = undefined;
      this.gatheredBytes = 0;
      if (from + count === partEnd) await this.closePart(index, partEnd === size);
    }
  }

  /** Drops the part being written; whole parts stay. */
  async abort(): Promise<void> {
    this.gathered = undefined;
    await this.part?.abort().catch(() => {});
    this.part = undefined;
  }

  private async closePart(index: number, last: boolean): Promise<void> {
    await this.inflight;
    await this.part!.close();
    this.part = undefined;
    this.kept = index + 1;
    // The last byte is in: the copy is complete, even if the loader stops before the body reports its end.
    if (last) {
      await this.entry.writeMeta({ ...this.meta, complete: true });
      this.committed = true;
    }
  }
}
