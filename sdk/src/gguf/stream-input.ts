import { RecycleGPTError } from '../errors.js';
import { throwIfAborted, type OpenedSource } from './source.js';

/** Size of the one buffer BYOB reads go into. */
const BYOB_READ_BYTES = 1 << 20;

/**
 * A byte stream read front to back: `peek` looks at the first bytes without consuming them (for the
 * header), `consume` moves bytes into a caller's view or drops them. Only chunks not yet consumed are
 * held, so memory stays at about one chunk once the header has been parsed.
 */
export class StreamInput {
  /** Absolute offset of the next byte `consume` hands out. */
  position = 0;
  /** True once the stream has reported its end. */
  ended = false;
  private reader: ReadableStreamDefaultReader<unknown> | ReadableStreamBYOBReader;
  private byob = false;
  /** Buffers that our own BYOB reads filled: once drained they are read into again. */
  private readonly ownBuffers = new WeakSet<ArrayBufferLike>();
  private spare: Uint8Array | undefined;
  private readonly chunks: Uint8Array[] = [];
  private buffered = 0;
  private readonly onAbort = () => this.cancel();

  constructor(
    private readonly source: OpenedSource,
    private readonly signal: AbortSignal | undefined,
    private readonly onConsumed: (position: number) => void = () => {},
  ) {
    this.reader = source.stream.getReader();
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /**
   * Switches to a BYOB reader when the stream is a byte stream (files, fetch and R2 bodies), so that
   * reads land in one reused buffer instead of a fresh chunk each: no garbage piles up between GCs,
   * which matters in a 128 MB isolate. Other streams keep their default reader.
   */
  reuseReadBuffers(): void {
    if (this.ended || this.byob) return;
    this.reader.releaseLock();
    try {
      this.reader = this.source.stream.getReader({ mode: 'byob' });
      this.byob = true;
    } catch {
      this.reader = this.source.stream.getReader();
    }
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Reads until at least `n` bytes are buffered or the stream ends. */
  async fill(n: number): Promise<void> {
    while (this.buffered < n && (await this.pull()));
  }

  /**
   * The first min(n, buffered) unconsumed bytes as one array: a view when they lie in one chunk, else
   * a copy of just those bytes, which then replaces the chunks it came from (so small chunks do not pile up).
   */
  peek(n: number): Uint8Array {
    const length = Math.min(n, this.buffered);
    const first = this.chunks[0];
    if (!first || first.length >= length) return (first ?? new Uint8Array(0)).subarray(0, length);
    const joined = new Uint8Array(length);
    let at = 0;
    let used = 0;
    while (at < length) {
      const chunk = this.chunks[used]!;
      const part = chunk.subarray(0, length - at);
      joined.set(part, at);
      at += part.length;
      if (part.length === chunk.length) used++;
      else this.chunks[used] = chunk.subarray(part.length);
    }
    this.chunks.splice(0, used, joined);
    return joined;
  }

  /** Moves up to `n` bytes into `into` (or drops them when `into` is null); returns how many there were. */
  async consume(into: Uint8Array | null, n: number): Promise<number> {
    let done = 0;
    while (done < n) {
      if (this.chunks.length === 0 && !(await this.pull())) break;
      const chunk = this.chunks[0]!;
      const count = Math.min(chunk.length, n - done);
      into?.set(count === chunk.length ? chunk : chunk.subarray(0, count), done);
      if (count < chunk.length) {
        this.chunks[0] = chunk.subarray(count);
      } else {
        this.chunks.shift();
        if (this.ownBuffers.has(chunk.buffer)) this.spare = new Uint8Array(chunk.buffer);
      }
      this.buffered -= count;
      this.position += count;
      done += count;
      this.onConsumed(this.position);
    }
    return done;
  }

  /** Stops reading: cancels the stream (which closes files and connections) and detaches from the signal. */
  close(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.cancel();
  }

  private cancel(): void {
    // Not awaited: a source's cancel may be slow, and nothing here depends on it finishing.
    this.reader.cancel().catch(() => {});
  }

  /** Reads one non-empty chunk into the buffer; false at the end of the stream. */
  private async pull(): Promise<boolean> {
    while (!this.ended) {
      throwIfAborted(this.signal);
      let result: ReadableStreamReadResult<unknown>;
      try {
        result = await this.read();
      } catch (error) {
        throwIfAborted(this.signal);
        if (error instanceof RecycleGPTError) throw error;
        const reason = error instanceof Error ? error.message : String(error);
        throw new RecycleGPTError('SOURCE_UNREADABLE', `reading the model from ${this.source.name} failed: ${reason}`, { cause: error });
      }
      // An abort cancels the reader, which ends a pending read as if the stream were done.
      throwIfAborted(this.signal);
      if (result.done) {
        this.ended = true;
        break;
      }
      const chunk = toBytes(result.value, this.source.name);
      if (chunk.length === 0) continue;
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      return true;
    }
    return false;
  }

  private async read(): Promise<ReadableStreamReadResult<unknown>> {
    if (!this.byob) return (this.reader as ReadableStreamDefaultReader<unknown>).read();
    const buffer = this.spare ?? new Uint8Array(BYOB_READ_BYTES);
    this.spare = undefined;
    const result = await (this.reader as ReadableStreamBYOBReader).read(buffer);
    // The read transferred the buffer: `result.value` views it under its new identity.
    if (result.value) this.ownBuffers.add(result.value.buffer);
    return result;
  }
}

function toBytes(value: unknown, name: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new RecycleGPTError('SOURCE_UNREADABLE', `the stream from ${name} yielded a ${typeof value} chunk; a model stream must yield bytes (Uint8Array)`);
}
