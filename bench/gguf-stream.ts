/**
 * Writes a GGUF file tensor by tensor, so that a model of hundreds of megabytes never sits in memory
 * as f32. The metadata is encoded by the fixtures' writer (test/fixtures/gguf-writer.ts, the one GGUF
 * encoder of the repository); this file only lays out the tensor infos and streams the data.
 */
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { writeGGUF, type GGUFKV } from '../test/fixtures/gguf-writer.js';
import { quantize, rowBytes } from '../test/fixtures/quantize.js';

const ALIGNMENT = 32;

export interface StreamedTensor {
  name: string;
  /** ne0 (contiguous) first. */
  dims: number[];
  /** ggml type id. */
  type: number;
  /** Values of rows [from, from + count) (f32, count × dims[0] of them). */
  rows(from: number, count: number): Float32Array;
}

/** Rows encoded at a time: bounded memory for the widest matrices (151936 × 1024 is 600 MB as f32). */
const ROWS_PER_CHUNK = 1024;

/** Tensor data bytes of `t` (ggml's row layout; the encoder checks block alignment). */
export function tensorBytes(t: Pick<StreamedTensor, 'dims' | 'type'>): number {
  const rows = t.dims.slice(1).reduce((a, b) => a * b, 1);
  return rowBytes(t.type, t.dims[0]!) * rows;
}

const padding = (n: number) => (ALIGNMENT - (n % ALIGNMENT)) % ALIGNMENT;

/** The header, metadata and tensor infos, padded to where the data starts. */
function header(metadata: GGUFKV[], tensors: StreamedTensor[]): Uint8Array {
  // The fixtures' writer with no tensors and alignment 1 gives magic, version, counts and the
  // metadata, unpadded; general.alignment is stated so that it does not add a different one.
  const kvs = metadata.some((kv) => kv.key === 'general.alignment') ? metadata : [...metadata, { key: 'general.alignment', type: 'u32' as const, value: ALIGNMENT }];
  const head = writeGGUF({ metadata: kvs, tensors: [], alignment: 1 });
  const utf8 = new TextEncoder();
  const infos: number[] = [];
  const u32 = (v: number) => infos.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  const u64 = (v: number) => (u32(v % 2 ** 32), u32(Math.floor(v / 2 ** 32)));
  let offset = 0;
  for (const t of tensors) {
    const name = utf8.encode(t.name);
    u64(name.length);
    infos.push(...name);
    u32(t.dims.length);
    t.dims.forEach(u64);
    u32(t.type);
    u64(offset);
    offset += tensorBytes(t) + padding(tensorBytes(t));
  }
  const out = new Uint8Array(head.length + infos.length + padding(head.length + infos.length));
  out.set(head);
  new DataView(out.buffer).setBigUint64(8, BigInt(tensors.length), true); // tensor count
  out.set(infos, head.length);
  return out;
}

/** Writes the GGUF to `path` (via a temporary file renamed at the end, so a partial file is never taken for a model). */
export function writeGGUFStream(path: string, metadata: GGUFKV[], tensors: StreamedTensor[]): void {
  const partial = `${path}.${process.pid}.partial`;
  const fd = openSync(partial, 'w');
  try {
    writeSync(fd, header(metadata, tensors));
    for (const t of tensors) {
      const rows = t.dims.slice(1).reduce((a, b) => a * b, 1);
      for (let from = 0; from < rows; from += ROWS_PER_CHUNK) {
        writeSync(fd, quantize(t.type, t.rows(from, Math.min(ROWS_PER_CHUNK, rows - from))));
      }
      writeSync(fd, new Uint8Array(padding(tensorBytes(t))));
    }
  } finally {
    closeSync(fd);
  }
  renameSync(partial, path);
}
