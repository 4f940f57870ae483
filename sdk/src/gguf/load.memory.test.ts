import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { loadGGUF, type TensorSink } from './load.js';

const TENSORS = 25;
const ROWS = 1024;
const COLS = 1024;
const TENSOR_BYTES = ROWS * COLS * 4; // F32: 4 MiB each, 100 MiB in all
const MiB = 1 << 20;

/** Writes a GGUF with TENSORS F32 tensors whose bytes all equal the tensor's index, a tensor at a time. */
async function writeLargeModel(path: string): Promise<number> {
  const utf8 = new TextEncoder();
  const header: number[] = [];
  const u32 = (v: number) => header.push(v & 255, (v >>> 8) & 255, (v >>> 16) & 255, v >>> 24);
  const u64 = (v: number) => (u32(v % 2 ** 32), u32(Math.floor(v / 2 ** 32)));
  const str = (s: string) => (u64(utf8.encode(s).length), header.push(...utf8.encode(s)));
  header.push(...utf8.encode('GGUF'));
  u32(3);
  u64(TENSORS);
  u64(1);
  str('general.architecture');
  u32(8);
  str('llama');
  for (let i = 0; i < TENSORS; i++) {
    str(`blk.${i}.weight`);
    u32(2);
    u64(COLS);
    u64(ROWS);
    u32(0);
    u64(i * TENSOR_BYTES);
  }
  while (header.length % 32) header.push(0);

  const file = await open(path, 'w');
  try {
    await file.write(Uint8Array.from(header));
    const data = new Uint8Array(TENSOR_BYTES);
    for (let i = 0; i < TENSORS; i++) await file.write(data.fill(i));
  } finally {
    await file.close();
  }
  return header.length + TENSORS * TENSOR_BYTES;
}

let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('streams a 100 MiB model from disk into WebAssembly memory without a JS-side copy', async () => {
  dir = await mkdtemp(join(tmpdir(), 'gguf-memory-'));
  const path = join(dir, 'large.gguf');
  const fileSize = await writeLargeModel(path);

  const memory = new WebAssembly.Memory({ initial: Math.ceil((TENSORS * TENSOR_BYTES) / 65536) });
  let next = 0;
  const sample = () => {
    const m = process.memoryUsage();
    return { js: m.heapUsed + m.arrayBuffers, rss: m.rss };
  };
  const before = sample();
  let peak = before;
  const track = () => {
    const now = sample();
    peak = { js: Math.max(peak.js, now.js), rss: Math.max(peak.rss, now.rss) };
  };
  const sink: TensorSink = {
    begin: track,
    reserve(tensor) {
      track();
      const view = new Uint8Array(memory.buffer, next, tensor.byteSize);
      next += tensor.byteSize;
      return view;
    },
    end: track,
  };
  const header = await loadGGUF(path, sink, { onProgress: track });

  expect(header.tensors).toHaveLength(TENSORS);
  const weights = new Uint8Array(memory.buffer);
  for (let i = 0; i < TENSORS; i++) {
    expect([weights[i * TENSOR_BYTES], weights[(i + 1) * TENSOR_BYTES - 1]]).toEqual([i, i]);
  }
  const jsGrowth = (peak.js - before.js) / MiB;
  const rssGrowth = (peak.rss - before.rss) / MiB;
  console.log(
    `streamed ${(fileSize / MiB).toFixed(1)} MiB into WebAssembly.Memory: peak JS heap+arrayBuffers growth ${jsGrowth.toFixed(1)} MiB, ` +
      `peak RSS growth ${rssGrowth.toFixed(1)} MiB (includes the touched WASM pages)`,
  );
  expect(jsGrowth).toBeLessThan(16);
});
