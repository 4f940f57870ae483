import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseGGUF } from '../sdk/src/gguf/parse.js';
import { writeGGUF } from '../test/fixtures/gguf-writer.js';
import { GGML_TYPE, dequantize, quantize } from '../test/fixtures/quantize.js';
import { writeGGUFStream, type StreamedTensor } from './gguf-stream.js';

const dir = mkdtempSync(join(tmpdir(), 'gguf-stream-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Values i / 64 - 1 for element i of a tensor, whatever chunk asks for them. */
function ramp(name: string, dims: number[], type: number): StreamedTensor & { values: Float32Array } {
  const count = dims.reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: count }, (_, i) => i / 64 - 1);
  return { name, dims, type, values, rows: (from, n) => values.slice(from * dims[0]!, (from + n) * dims[0]!) };
}

describe('writeGGUFStream', () => {
  // 1100 rows: more than one 1024-row chunk, and an odd tensor size, so padding between tensors is exercised.
  const tensors = [ramp('a.weight', [64, 1100], GGML_TYPE.Q8_0), ramp('norm.weight', [7], GGML_TYPE.F32), ramp('b.weight', [32, 3], GGML_TYPE.Q4_0)];
  const metadata = [
    { key: 'general.architecture', type: 'string' as const, value: 'llama' },
    { key: 'x.count', type: 'u32' as const, value: 3 },
  ];
  const path = join(dir, 'model.gguf');
  writeGGUFStream(path, metadata, tensors);
  const bytes = new Uint8Array(readFileSync(path));

  it('writes what the SDK parses: metadata, tensor infos and 32-byte aligned data', () => {
    const header = parseGGUF(bytes);
    expect(header.metadata['general.architecture']).toBe('llama');
    expect(header.metadata['x.count']).toBe(3);
    expect(header.metadata['general.alignment']).toBe(32);
    expect(header.tensors.map((t) => [t.name, t.dims, t.type])).toEqual(tensors.map((t) => [t.name, t.dims, t.type]));
    expect(header.dataOffset % 32).toBe(0);
    for (const t of header.tensors) expect(t.offset % 32).toBe(0);
  });

  it('stores each tensor exactly as the fixtures encode it whole, chunked or not', () => {
    const header = parseGGUF(bytes);
    header.tensors.forEach((info, i) => {
      const start = header.dataOffset + info.offset;
      expect(bytes.subarray(start, start + info.byteSize)).toEqual(quantize(info.type, tensors[i]!.values));
    });
    const norm = header.tensors[1]!;
    const start = header.dataOffset + norm.offset;
    expect(Array.from(dequantize(norm.type, bytes.subarray(start, start + norm.byteSize), 7))).toEqual(Array.from(tensors[1]!.values));
  });

  it('gives the same bytes as the fixtures\' whole-file writer', () => {
    const whole = writeGGUF({ metadata: [...metadata, { key: 'general.alignment', type: 'u32', value: 32 }], tensors: tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, data: t.values })) });
    expect(bytes).toEqual(whole);
  });
});
