import { describe, expect, it } from 'vitest';
import type { Entry, EntryMeta, PartWriter } from './cache-store.js';
import { CopyWriter } from './cache-writer.js';

/** An entry in memory that logs every call, as the stores see them. */
function memoryEntry() {
  const log: string[] = [];
  const parts = new Map<number, Uint8Array>();
  let meta: EntryMeta | undefined;
  const entry: Entry = {
    readMeta: async () => meta,
    writeMeta: async (m) => void (log.push(`meta complete=${m.complete}`), (meta = m)),
    partLength: async (i) => parts.get(i)?.length,
    readPart: async () => new ReadableStream(),
    async writePart(index): Promise<PartWriter> {
      const chunks: Uint8Array[] = [];
      return {
        write: async (chunk) => void (log.push(`part ${index} write ${chunk.length}`), chunks.push(chunk.slice())),
        close: async () => void (log.push(`part ${index} close`), parts.set(index, concat(chunks))),
        abort: async () => void log.push(`part ${index} abort`),
      };
    },
    remove: async () => void parts.clear(),
  };
  return { entry, log, parts };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) out.set(c, (at += c.length) - c.length);
  return out;
}

/** Byte equality (vitest's deep equality walks megabytes element by element). */
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

const file = Uint8Array.from({ length: 5 << 20 }, (_, i) => (i * 31) >> 3);
const meta: EntryMeta = { format: 1, key: 'k', url: 'u', size: file.length, partBytes: 2 << 20, complete: false, etag: '"v"' };

describe('CopyWriter', () => {
  it('gathers small chunks into 1 MiB writes, closes each part whole and marks the copy complete after the last byte', async () => {
    const { entry, log, parts } = memoryEntry();
    const copy = new CopyWriter(entry, meta, 0);
    for (let at = 0; at < file.length; at += 65000) await copy.write(file.subarray(at, at + 65000), at);
    const MiB = 1 << 20;
    expect(log).toEqual([
      `part 0 write ${MiB}`, `part 0 write ${MiB}`, 'part 0 close',
      `part 1 write ${MiB}`, `part 1 write ${MiB}`, 'part 1 close',
      `part 2 write ${MiB}`, 'part 2 close', 'meta complete=true',
    ]);
    expect(same(concat([parts.get(0)!, parts.get(1)!, parts.get(2)!]), file)).toBe(true);
    expect([copy.kept, copy.committed]).toEqual([3, true]);
  });

  it('a chunk that spans parts is split at the boundary; resuming starts at a later part', async () => {
    const { entry, log, parts } = memoryEntry();
    const copy = new CopyWriter(entry, meta, 1);
    const from = 2 << 20;
    await copy.write(file.subarray(from, from + (3 << 19)), from);
    expect(copy.kept).toBe(1);
    await copy.write(file.subarray(from + (3 << 19)), from + (3 << 19));
    expect(log.filter((line) => line.endsWith('close'))).toEqual(['part 1 close', 'part 2 close']);
    expect(same(parts.get(1)!, file.subarray(2 << 20, 4 << 20))).toBe(true);
    expect([copy.kept, copy.committed]).toEqual([3, true]);
  });

  it('abort drops the part being written and keeps the whole ones; bytes past the announced size are refused', async () => {
    const { entry, log } = memoryEntry();
    const copy = new CopyWriter(entry, meta, 0);
    await copy.write(file.subarray(0, 3 << 20), 0);
    await copy.abort();
    expect(log.slice(-3)).toEqual(['part 0 close', `part 1 write ${1 << 20}`, 'part 1 abort']);
    expect([copy.kept, copy.committed]).toEqual([1, false]);
    const whole = new CopyWriter(entry, meta, 0);
    await whole.write(file, 0);
    await expect(whole.write(new Uint8Array(1), file.length)).rejects.toThrow(`the server sent more than the ${file.length} bytes its Content-Length announced`);
  });
});
