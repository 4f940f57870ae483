import { GGUFError } from '../errors.js';

/** Thrown (internally) when a header prefix ends before the parser is done: read at least `bytes` bytes and retry. */
export class NeedMoreBytes {
  constructor(readonly bytes: number) {}
}

export interface CursorLimits {
  /** True when `bytes` is everything there is: running out is then truncation, not a reason to wait. */
  complete: boolean;
  /** Size of the whole file, when known. */
  totalSize?: number;
  /** The header may not extend past this many bytes (a cap that protects the streaming loader's buffer). */
  maxHeaderBytes: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const TWO_POW_32 = 2 ** 32;

/**
 * Little-endian reader over a header prefix. Every read is bounds-checked, and every count is
 * checked against the bytes that could still follow before anything is allocated for it.
 */
export class Cursor {
  pos = 0;
  private readonly view: DataView;

  constructor(readonly bytes: Uint8Array, private readonly limits: CursorLimits) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get complete(): boolean {
    return this.limits.complete;
  }

  /** Size of the whole file, when known. */
  get totalSize(): number | undefined {
    return this.limits.totalSize;
  }

  /** The end of the bytes the header could occupy, and what sets that end (for messages). */
  private headerEnd(): { end: number; limit: string } {
    const { complete, totalSize, maxHeaderBytes } = this.limits;
    const fileEnd = Math.min(complete ? this.bytes.length : Infinity, totalSize ?? Infinity);
    return fileEnd <= maxHeaderBytes
      ? { end: fileEnd, limit: 'in the file (it is truncated or corrupt)' }
      : { end: maxHeaderBytes, limit: `within the ${maxHeaderBytes}-byte header cap (the file is corrupt, or raise maxHeaderBytes)` };
  }

  /** Claims `n` bytes for `what` and returns where they start. */
  take(n: number, what: string): number {
    const start = this.pos;
    const end = start + n;
    if (end > this.bytes.length) {
      const { complete, totalSize, maxHeaderBytes } = this.limits;
      if (complete || (totalSize !== undefined && end > totalSize)) {
        const size = complete ? this.bytes.length : totalSize;
        throw new GGUFError(`truncated: ${what} needs ${n} bytes at offset ${start}, but the data ends at byte ${size}`);
      }
      if (end > maxHeaderBytes) {
        throw new GGUFError(
          `the GGUF header is larger than ${maxHeaderBytes} bytes (${what} ends at offset ${end}); ` +
            'the file is corrupt, or raise maxHeaderBytes for an unusually large vocabulary',
        );
      }
      throw new NeedMoreBytes(end);
    }
    this.pos = end;
    return start;
  }

  /** Fails unless `count` items of at least `minBytes` each fit in the bytes that can follow. */
  checkCount(count: number, minBytes: number, what: string): void {
    const { end, limit } = this.headerEnd();
    const available = Math.max(0, end - this.pos);
    if (count * minBytes > available) {
      throw new GGUFError(
        `${what} is ${count}, which needs at least ${count * minBytes} bytes, but only ${available} bytes follow offset ${this.pos} ${limit}`,
      );
    }
  }

  u8(what: string): number {
    return this.view.getUint8(this.take(1, what));
  }
  i8(what: string): number {
    return this.view.getInt8(this.take(1, what));
  }
  u16(what: string): number {
    return this.view.getUint16(this.take(2, what), true);
  }
  i16(what: string): number {
    return this.view.getInt16(this.take(2, what), true);
  }
  u32(what: string): number {
    return this.view.getUint32(this.take(4, what), true);
  }
  i32(what: string): number {
    return this.view.getInt32(this.take(4, what), true);
  }
  f32(what: string): number {
    return this.view.getFloat32(this.take(4, what), true);
  }
  f64(what: string): number {
    return this.view.getFloat64(this.take(8, what), true);
  }
  u64(what: string): bigint {
    return this.view.getBigUint64(this.take(8, what), true);
  }
  i64(what: string): bigint {
    return this.view.getBigInt64(this.take(8, what), true);
  }

  /** A u64 used as a size, count or offset: it must be a safe integer to be usable at all. */
  size(what: string): number {
    const at = this.take(8, what);
    const value = this.view.getUint32(at, true) + this.view.getUint32(at + 4, true) * TWO_POW_32;
    if (!Number.isSafeInteger(value)) throw new GGUFError(`${what} is ${this.view.getBigUint64(at, true)}, which is absurdly large`);
    return value;
  }

  string(what: string): string {
    const length = this.size(`length of ${what}`);
    this.checkCount(length, 1, `length of ${what}`);
    const start = this.take(length, what);
    try {
      return utf8.decode(this.bytes.subarray(start, start + length));
    } catch {
      throw new GGUFError(`${what} at offset ${start} is not valid UTF-8`);
    }
  }

  /** A fresh copy of `n` bytes, so that values built on it do not keep the input buffer alive. */
  copy(n: number, what: string): ArrayBuffer {
    const start = this.take(n, what);
    return this.bytes.slice(start, start + n).buffer;
  }
}
