/**
 * A tiny, independent GGUF reader for tests (the SDK has its own; this one must not share its bugs).
 * Reads a whole file held in memory; values keep their declared GGUF type so tests can check it.
 */
import { dequantize, rowBytes } from '../fixtures/quantize.js';
import type { GGUFScalarType, GGUFValueType } from '../fixtures/gguf-writer.js';

export interface ReadKV {
  key: string;
  type: GGUFValueType;
  itemType?: GGUFScalarType;
  value: unknown;
}

export interface ReadTensor {
  name: string;
  dims: number[];
  type: number;
  /** Offset relative to the data section. */
  offset: number;
  bytes: Uint8Array;
}

export interface ReadGGUF {
  version: number;
  alignment: number;
  dataOffset: number;
  metadata: ReadKV[];
  tensors: ReadTensor[];
  get(key: string): unknown;
  tensor(name: string): ReadTensor | undefined;
  /** Dequantized f32 values of a tensor, ne0 contiguous. */
  tensorF32(name: string): Float32Array;
}

const TYPE_NAMES: GGUFValueType[] = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'];

export function readGGUF(input: Uint8Array): ReadGGUF {
  const file = new Uint8Array(input.buffer, input.byteOffset, input.byteLength); // a plain view, even of a Buffer
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let at = 0;
  const take = (n: number) => {
    if (at + n > file.length) throw new Error(`GGUF truncated at byte ${at}`);
    const start = at;
    at += n;
    return start;
  };
  const u32 = () => view.getUint32(take(4), true);
  const u64 = () => Number(view.getBigUint64(take(8), true));
  const str = () => {
    const n = u64();
    return utf8.decode(file.subarray(take(n), at));
  };
  const typeName = (id: number) => {
    const name = TYPE_NAMES[id];
    if (!name) throw new Error(`unknown GGUF value type ${id}`);
    return name;
  };
  const scalar = (type: GGUFValueType): unknown => {
    switch (type) {
      case 'u8': return view.getUint8(take(1));
      case 'i8': return view.getInt8(take(1));
      case 'u16': return view.getUint16(take(2), true);
      case 'i16': return view.getInt16(take(2), true);
      case 'u32': return view.getUint32(take(4), true);
      case 'i32': return view.getInt32(take(4), true);
      case 'f32': return view.getFloat32(take(4), true);
      case 'f64': return view.getFloat64(take(8), true);
      case 'u64': return view.getBigUint64(take(8), true);
      case 'i64': return view.getBigInt64(take(8), true);
      case 'bool': return view.getUint8(take(1)) !== 0;
      case 'string': return str();
      case 'array': throw new Error('nested arrays are not used by these fixtures');
    }
  };

  if (utf8.decode(file.subarray(0, 4)) !== 'GGUF') throw new Error('not a GGUF file');
  take(4);
  const version = u32();
  const tensorCount = u64();
  const kvCount = u64();
  const metadata: ReadKV[] = [];
  for (let i = 0; i < kvCount; i++) {
    const key = str();
    const type = typeName(u32());
    if (type !== 'array') {
      metadata.push({ key, type, value: scalar(type) });
      continue;
    }
    const itemType = typeName(u32()) as GGUFScalarType;
    const n = u64();
    const value = Array.from({ length: n }, () => scalar(itemType));
    metadata.push({ key, type, itemType, value });
  }
  const get = (key: string) => metadata.find((kv) => kv.key === key)?.value;
  const alignment = Number(get('general.alignment') ?? 32);

  const infos = Array.from({ length: tensorCount }, () => {
    const name = str();
    const dims = Array.from({ length: u32() }, () => u64());
    return { name, dims, type: u32(), offset: u64() };
  });
  const dataOffset = Math.ceil(at / alignment) * alignment;
  const tensors = infos.map((t) => {
    const rows = t.dims.slice(1).reduce((a, b) => a * b, 1);
    const size = rowBytes(t.type, t.dims[0] ?? 1) * rows;
    const start = dataOffset + t.offset;
    if (start + size > file.length) throw new Error(`${t.name}: data runs past the end of the file`);
    return { ...t, bytes: file.subarray(start, start + size) };
  });
  const tensor = (name: string) => tensors.find((t) => t.name === name);
  const tensorF32 = (name: string) => {
    const t = tensor(name);
    if (!t) throw new Error(`no tensor ${name}`);
    return dequantize(t.type, t.bytes, t.dims.reduce((a, b) => a * b, 1));
  };
  return { version, alignment, dataOffset, metadata, tensors, get, tensor, tensorF32 };
}
