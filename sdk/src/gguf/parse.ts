/**
 * GGUF v2/v3 header reader (spec: ggml docs/gguf.md). All integers are little-endian; numeric
 * metadata arrays become typed arrays built on copied, 0-offset buffers (every JS host we target
 * is little-endian, so the bytes can be used as they are).
 */
import { GGUFError, UnsupportedError } from '../errors.js';
import { Cursor, NeedMoreBytes } from './cursor.js';
import { ggmlTypeInfo, ggmlTypeName } from '../contract/ggml-types.js';
import type { GGUFArray, GGUFHeader, GGUFMetadata, GGUFTensorInfo, GGUFValue } from './types.js';

export const DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4;
/** Arrays of arrays are legal but never deeper than this in practice; the cap keeps recursion shallow. */
const MAX_ARRAY_DEPTH = 8;
/** Smallest possible encodings, used to reject absurd counts before looping over them. */
const MIN_KV_BYTES = 8 + 4 + 1; // key length, value type, 1-byte value
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8; // name length, n_dims, one dim, type, offset
const MIN_ARRAY_BYTES = 4 + 8; // item type, length

const enum ValueType {
  U8 = 0, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64,
}

type TypedArrayCtor = { new (buffer: ArrayBuffer): GGUFArray; readonly BYTES_PER_ELEMENT: number };
const NUMERIC_ARRAYS: Partial<Record<number, TypedArrayCtor>> = {
  [ValueType.U8]: Uint8Array, [ValueType.I8]: Int8Array,
  [ValueType.U16]: Uint16Array, [ValueType.I16]: Int16Array,
  [ValueType.U32]: Uint32Array, [ValueType.I32]: Int32Array,
  [ValueType.F32]: Float32Array, [ValueType.F64]: Float64Array,
  [ValueType.U64]: BigUint64Array, [ValueType.I64]: BigInt64Array,
};

export interface ParseGGUFOptions {
  /** Size of the whole file. Defaults to `bytes.length`; give it when `bytes` is only a prefix holding the header. */
  totalSize?: number;
}

/** Parses the header of a GGUF file held in memory (the whole file, or a prefix that holds the whole header). */
export function parseGGUF(bytes: Uint8Array | ArrayBuffer, options: ParseGGUFOptions = {}): GGUFHeader {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const totalSize = options.totalSize ?? view.length;
  return parseHeader(new Cursor(view, { complete: true, totalSize, maxHeaderBytes: totalSize }));
}

/**
 * For the streaming loader: parses the header from the first bytes of a stream, or says how many
 * bytes it needs at least. `complete` means the stream has ended (running out is then truncation).
 */
export function parseGGUFPrefix(
  prefix: Uint8Array,
  limits: { complete: boolean; totalSize?: number; maxHeaderBytes: number },
): GGUFHeader | { needBytes: number } {
  try {
    return parseHeader(new Cursor(prefix, limits));
  } catch (error) {
    if (error instanceof NeedMoreBytes) return { needBytes: error.bytes };
    throw error;
  }
}

function parseHeader(c: Cursor): GGUFHeader {
  readMagic(c);
  const version = readVersion(c);
  const tensorCount = c.size('tensor count');
  c.checkCount(tensorCount, MIN_TENSOR_INFO_BYTES, 'tensor count');
  const kvCount = c.size('metadata key/value count');
  c.checkCount(kvCount, MIN_KV_BYTES, 'metadata key/value count');

  const metadata: GGUFMetadata = {};
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key #${i}`);
    if (Object.prototype.hasOwnProperty.call(metadata, key)) throw new GGUFError(`metadata key "${key}" appears twice`);
    const value = readValue(c, c.u32(`value type of ${key}`), key, 0);
    // defineProperty, not assignment: a key such as "__proto__" must stay plain data.
    Object.defineProperty(metadata, key, { value, enumerable: true, writable: true, configurable: true });
  }
  const alignment = readAlignment(metadata);

  const tensors: GGUFTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const tensor = readTensorInfo(c, i, alignment);
    if (names.has(tensor.name)) throw new GGUFError(`tensor "${tensor.name}" appears twice`);
    names.add(tensor.name);
    tensors.push(tensor);
  }
  const dataOffset = alignUp(c.pos, alignment);
  checkLayout(tensors, dataOffset, c.totalSize);
  return { version, metadata, tensors, alignment, dataOffset };
}

function readMagic(c: Cursor): void {
  if (c.complete && c.bytes.length < 4) throw new GGUFError(`not a GGUF file: it is only ${c.bytes.length} bytes long`);
  const at = c.take(4, 'magic');
  const magic = c.bytes.subarray(at, at + 4);
  if (String.fromCharCode(...magic) === 'GGUF') return;
  const hex = Array.from(magic, (b) => `0x${b.toString(16).padStart(2, '0')}`).join(' ');
  const text = Array.from(magic, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  throw new GGUFError(`not a GGUF file: it starts with ${hex} ("${text}"), expected "GGUF"`);
}

function readVersion(c: Cursor): number {
  const version = c.u32('version');
  if (version === 2 || version === 3) return version;
  if (version === 1) {
    throw new UnsupportedError('GGUF v1 files are not supported; re-convert the model with a current llama.cpp (GGUF v2 or v3)');
  }
  if (version === 0x02000000 || version === 0x03000000) {
    throw new UnsupportedError('this is a big-endian GGUF file; only little-endian GGUF files are supported');
  }
  throw new UnsupportedError(`GGUF version ${version} is not supported (this reader handles versions 2 and 3)`);
}

function readValue(c: Cursor, type: number, key: string, depth: number): GGUFValue {
  switch (type) {
    case ValueType.U8: return c.u8(key);
    case ValueType.I8: return c.i8(key);
    case ValueType.U16: return c.u16(key);
    case ValueType.I16: return c.i16(key);
    case ValueType.U32: return c.u32(key);
    case ValueType.I32: return c.i32(key);
    case ValueType.F32: return c.f32(key);
    case ValueType.F64: return c.f64(key);
    case ValueType.U64: return toNumberIfSafe(c.u64(key));
    case ValueType.I64: return toNumberIfSafe(c.i64(key));
    case ValueType.Bool: return readBool(c, key);
    case ValueType.String: return c.string(`value of ${key}`);
    case ValueType.Array: return readArray(c, key, depth);
    default: throw new GGUFError(`metadata "${key}" has unknown value type ${type}`);
  }
}

function readArray(c: Cursor, key: string, depth: number): GGUFArray {
  if (depth >= MAX_ARRAY_DEPTH) throw new GGUFError(`metadata "${key}" nests arrays more than ${MAX_ARRAY_DEPTH} deep`);
  const itemType = c.u32(`item type of ${key}`);
  const length = c.size(`length of ${key}`);
  const what = `array length of "${key}"`;
  const Numeric = NUMERIC_ARRAYS[itemType];
  if (Numeric) {
    c.checkCount(length, Numeric.BYTES_PER_ELEMENT, what);
    return new Numeric(c.copy(length * Numeric.BYTES_PER_ELEMENT, key));
  }
  const items: GGUFValue[] = [];
  switch (itemType) {
    case ValueType.Bool:
      c.checkCount(length, 1, what);
      for (let i = 0; i < length; i++) items.push(readBool(c, key));
      return items as boolean[];
    case ValueType.String:
      c.checkCount(length, 8, what);
      for (let i = 0; i < length; i++) items.push(c.string(`${key}[${i}]`));
      return items as string[];
    case ValueType.Array:
      c.checkCount(length, MIN_ARRAY_BYTES, what);
      for (let i = 0; i < length; i++) items.push(readArray(c, key, depth + 1));
      return items;
    default:
      throw new GGUFError(`metadata "${key}" is an array of unknown value type ${itemType}`);
  }
}

function readBool(c: Cursor, key: string): boolean {
  const byte = c.u8(key);
  if (byte > 1) throw new GGUFError(`metadata "${key}" holds ${byte} where a bool (0 or 1) belongs`);
  return byte === 1;
}

function toNumberIfSafe(value: bigint): number | bigint {
  const asNumber = Number(value);
  return Number.isSafeInteger(asNumber) ? asNumber : value;
}

function readAlignment(metadata: GGUFMetadata): number {
  if (!Object.prototype.hasOwnProperty.call(metadata, 'general.alignment')) return DEFAULT_ALIGNMENT;
  const value = metadata['general.alignment'];
  const ok = typeof value === 'number' && Number.isInteger(value) && value > 0 && (value & (value - 1)) === 0;
  if (!ok) throw new GGUFError(`general.alignment must be a power of two, got ${String(value)}`);
  return value;
}

function readTensorInfo(c: Cursor, index: number, alignment: number): GGUFTensorInfo {
  const name = c.string(`name of tensor #${index}`);
  const nDims = c.u32(`n_dims of tensor ${name}`);
  if (nDims < 1 || nDims > MAX_DIMS) throw new GGUFError(`tensor "${name}" has ${nDims} dimensions; GGUF allows 1 to ${MAX_DIMS}`);
  const dims: number[] = [];
  let elements = 1;
  for (let d = 0; d < nDims; d++) {
    const dim = c.size(`dimension ${d} of tensor ${name}`);
    if (dim === 0) throw new GGUFError(`tensor "${name}" has a zero dimension (dims ${dims.concat(dim).join(' x ')})`);
    elements *= dim;
    if (elements > Number.MAX_SAFE_INTEGER) throw new GGUFError(`tensor "${name}" has more than 2^53 elements`);
    dims.push(dim);
  }
  const type = c.u32(`type of tensor ${name}`);
  const offset = c.size(`offset of tensor ${name}`);
  if (offset % alignment !== 0) {
    throw new GGUFError(`tensor "${name}" starts at data offset ${offset}, which is not a multiple of the alignment ${alignment}`);
  }
  return { name, dims, type, offset, byteSize: tensorByteSize(name, type, dims, elements) };
}

function tensorByteSize(name: string, type: number, dims: number[], elements: number): number {
  const info = ggmlTypeInfo(type);
  if (!info) throw new GGUFError(`tensor "${name}" has unknown ggml type id ${type}`);
  if (dims[0]! % info.blockSize !== 0) {
    throw new GGUFError(`tensor "${name}": rows of ${dims[0]} elements are not a whole number of ${info.name} blocks (${info.blockSize} elements each)`);
  }
  const bytes = (elements / info.blockSize) * info.blockBytes;
  if (!Number.isSafeInteger(bytes)) throw new GGUFError(`tensor "${name}" is absurdly large (${ggmlTypeName(type)}, dims ${dims.join(' x ')})`);
  return bytes;
}

/** Tensors must not overlap, and must end within the file when its size is known. */
function checkLayout(tensors: GGUFTensorInfo[], dataOffset: number, totalSize: number | undefined): void {
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  let previous: GGUFTensorInfo | undefined;
  for (const tensor of byOffset) {
    if (previous && tensor.offset < previous.offset + previous.byteSize) {
      throw new GGUFError(
        `tensor "${tensor.name}" (data offset ${tensor.offset}) overlaps tensor "${previous.name}" (data offset ${previous.offset}, ${previous.byteSize} bytes)`,
      );
    }
    const end = dataOffset + tensor.offset + tensor.byteSize;
    if (totalSize !== undefined && end > totalSize) {
      throw new GGUFError(`truncated: tensor "${tensor.name}" ends at byte ${end}, past the end of the file (${totalSize} bytes)`);
    }
    previous = tensor;
  }
}

export function alignUp(offset: number, alignment: number): number {
  return Math.ceil(offset / alignment) * alignment;
}
