import { describe, expect, it } from 'vitest';
import { writeGGUF, type GGUFKV } from '../../../test/fixtures/gguf-writer.js';
import { GGUFError, RecycleGPTError, UnsupportedError } from '../errors.js';
import { parseGGUF, parseGGUFPrefix } from './parse.js';
import { summarizeGGUF } from './summary.js';

const utf8 = new TextEncoder();

/** Little-endian byte builder for files the fixture writer cannot (or must not) produce. */
class Raw {
  private readonly out: number[] = [];
  u8(...values: number[]): this {
    this.out.push(...values);
    return this;
  }
  u32(value: number): this {
    for (let i = 0; i < 4; i++) this.out.push((value >>> (8 * i)) & 0xff);
    return this;
  }
  u64(value: number | bigint): this {
    let v = BigInt(value);
    for (let i = 0; i < 8; i++, v >>= 8n) this.out.push(Number(v & 0xffn));
    return this;
  }
  str(text: string | number[]): this {
    const bytes = typeof text === 'string' ? [...utf8.encode(text)] : text;
    return this.u64(bytes.length).u8(...bytes);
  }
  tensor(name: string, dims: (number | bigint)[], type: number, offset: number | bigint): this {
    this.str(name).u32(dims.length);
    for (const d of dims) this.u64(d);
    return this.u32(type).u64(offset);
  }
  padTo(alignment: number, extra = 0): this {
    while (this.out.length % alignment) this.out.push(0);
    for (let i = 0; i < extra; i++) this.out.push(0);
    return this;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

function header(tensors: number | bigint, kvs: number | bigint, version = 3): Raw {
  return new Raw().u8(...utf8.encode('GGUF')).u32(version).u64(tensors).u64(kvs);
}

/** A file whose only content is one F32 tensor of `elements` values, optionally with KVs first. */
function oneTensorFile(elements: number, kv?: (r: Raw) => Raw, kvCount = 0): Uint8Array {
  const r = header(1, kvCount);
  kv?.(r);
  return r.tensor('t', [elements], 0, 0).padTo(32, elements * 4).bytes();
}

function parseError(bytes: Uint8Array): Error {
  try {
    parseGGUF(bytes);
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected parseGGUF to fail');
}

function expectGGUFError(bytes: Uint8Array, message: RegExp): void {
  const error = parseError(bytes);
  expect(error).toBeInstanceOf(GGUFError);
  expect(error.message).toMatch(message);
}

const everyScalar: GGUFKV[] = [
  { key: 'u8', type: 'u8', value: 255 },
  { key: 'i8', type: 'i8', value: -128 },
  { key: 'u16', type: 'u16', value: 65535 },
  { key: 'i16', type: 'i16', value: -32768 },
  { key: 'u32', type: 'u32', value: 4294967295 },
  { key: 'i32', type: 'i32', value: -2147483648 },
  { key: 'f32', type: 'f32', value: 1.5 },
  { key: 'f64', type: 'f64', value: Math.PI },
  { key: 'bool.t', type: 'bool', value: true },
  { key: 'bool.f', type: 'bool', value: false },
  { key: 'string', type: 'string', value: 'héllo ▁wörld 🦙' },
  { key: 'empty', type: 'string', value: '' },
  { key: 'u64.safe', type: 'u64', value: 2 ** 53 - 1 },
  { key: 'u64.big', type: 'u64', value: 2n ** 64n - 1n },
  { key: 'i64.neg', type: 'i64', value: -42 },
  { key: 'i64.min', type: 'i64', value: -(2n ** 63n) },
];

const everyArray: GGUFKV[] = [
  { key: 'a.u8', type: 'array', itemType: 'u8', value: [0, 1, 255] },
  { key: 'a.i8', type: 'array', itemType: 'i8', value: [-1, 2] },
  { key: 'a.u16', type: 'array', itemType: 'u16', value: [65535] },
  { key: 'a.i16', type: 'array', itemType: 'i16', value: [-2, 3] },
  { key: 'a.u32', type: 'array', itemType: 'u32', value: [1, 2, 3] },
  { key: 'a.i32', type: 'array', itemType: 'i32', value: [-7, 7] },
  { key: 'a.f32', type: 'array', itemType: 'f32', value: [0.5, -0.25] },
  { key: 'a.f64', type: 'array', itemType: 'f64', value: [1e300] },
  { key: 'a.u64', type: 'array', itemType: 'u64', value: [2n ** 64n - 1n] },
  { key: 'a.i64', type: 'array', itemType: 'i64', value: [-5n] },
  { key: 'a.bool', type: 'array', itemType: 'bool', value: [true, false, true] },
  { key: 'a.string', type: 'array', itemType: 'string', value: ['<s>', '', 'ü'] },
  { key: 'a.empty', type: 'array', itemType: 'u32', value: [] },
];

describe('parseGGUF: valid files', () => {
  for (const version of [2, 3] as const) {
    it(`round-trips every metadata value type (v${version})`, () => {
      const file = writeGGUF({ version, metadata: [...everyScalar, ...everyArray], tensors: [] });
      const { version: parsedVersion, metadata, tensors, alignment } = parseGGUF(file);
      expect(parsedVersion).toBe(version);
      expect(tensors).toEqual([]);
      expect(alignment).toBe(32);
      expect(metadata).toEqual({
        u8: 255, i8: -128, u16: 65535, i16: -32768, u32: 4294967295, i32: -2147483648,
        f32: 1.5, f64: Math.PI, 'bool.t': true, 'bool.f': false,
        string: 'héllo ▁wörld 🦙', empty: '',
        'u64.safe': 2 ** 53 - 1, 'u64.big': 2n ** 64n - 1n, 'i64.neg': -42, 'i64.min': -(2n ** 63n),
        'a.u8': Uint8Array.of(0, 1, 255),
        'a.i8': Int8Array.of(-1, 2),
        'a.u16': Uint16Array.of(65535),
        'a.i16': Int16Array.of(-2, 3),
        'a.u32': Uint32Array.of(1, 2, 3),
        'a.i32': Int32Array.of(-7, 7),
        'a.f32': Float32Array.of(0.5, -0.25),
        'a.f64': Float64Array.of(1e300),
        'a.u64': BigUint64Array.of(2n ** 64n - 1n),
        'a.i64': BigInt64Array.of(-5n),
        'a.bool': [true, false, true],
        'a.string': ['<s>', '', 'ü'],
        'a.empty': new Uint32Array(0),
      });
    });
  }

  it('copies numeric arrays out of the input buffer', () => {
    const file = writeGGUF({ metadata: [{ key: 'scores', type: 'array', itemType: 'f32', value: [1, 2, 3] }], tensors: [] });
    const scores = parseGGUF(file).metadata['scores'] as Float32Array;
    expect(scores.buffer).not.toBe(file.buffer);
    expect(scores.buffer.byteLength).toBe(12);
  });

  it('reads nested arrays', () => {
    const file = header(0, 1)
      .str('nested').u32(9).u32(9).u64(2) // array of 2 arrays
      .u32(4).u64(2).u32(1).u32(2) // [1, 2] as u32
      .u32(8).u64(1).str('x') // ['x']
      .bytes();
    expect(parseGGUF(file).metadata['nested']).toEqual([Uint32Array.of(1, 2), ['x']]);
  });

  it('keeps a "__proto__" key as plain data', () => {
    const file = writeGGUF({ metadata: [{ key: '__proto__', type: 'string', value: 'x' }], tensors: [] });
    const { metadata } = parseGGUF(file);
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
    expect(Object.keys(metadata)).toEqual(['__proto__']);
  });

  it('sizes F32, F16, Q4_0 and Q8_0 tensors and places them at aligned offsets', () => {
    const tensors = [
      { name: 'f32', dims: [3, 2], type: 0, data: new Float32Array(6) },
      { name: 'f16', dims: [5], type: 1, data: new Float32Array(5) },
      { name: 'q4', dims: [64, 3], type: 2, data: new Float32Array(192) },
      { name: 'q8', dims: [32, 1, 2, 1], type: 8, data: new Float32Array(64) },
    ];
    for (const alignment of [32, 64, 1, 4096]) {
      const file = writeGGUF({ alignment, metadata: [], tensors });
      const parsed = parseGGUF(file);
      expect(parsed.alignment).toBe(alignment);
      expect(parsed.dataOffset % alignment).toBe(0);
      expect(parsed.tensors.map((t) => [t.name, t.dims, t.type, t.byteSize])).toEqual([
        ['f32', [3, 2], 0, 24],
        ['f16', [5], 1, 10],
        ['q4', [64, 3], 2, 6 * 18],
        ['q8', [32, 1, 2, 1], 8, 2 * 34],
      ]);
      for (const t of parsed.tensors) expect(t.offset % alignment).toBe(0);
    }
  });

  it('knows the sizes of other common ggml types', () => {
    const types: [number, number][] = [[3, 20 * 8], [6, 22 * 8], [7, 24 * 8], [9, 36 * 8], [10, 84], [11, 110], [12, 144], [13, 176], [14, 210], [30, 512], [23, 136]];
    const r = header(types.length, 0);
    let offset = 0;
    types.forEach(([type, bytes], i) => {
      r.tensor(`t${i}`, [256], type, offset);
      offset += Math.ceil(bytes / 32) * 32;
    });
    const parsed = parseGGUF(r.padTo(32, offset).bytes());
    expect(parsed.tensors.map((t) => t.byteSize)).toEqual(types.map(([, bytes]) => bytes));
  });

  it('summarizes a header for `info`', () => {
    const file = writeGGUF({
      metadata: [
        { key: 'general.architecture', type: 'string', value: 'llama' },
        { key: 'general.name', type: 'string', value: 'tiny' },
        { key: 'llama.context_length', type: 'u32', value: 256 },
        { key: 'tokenizer.ggml.model', type: 'string', value: 'llama' },
        { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: ['a', 'b', 'c'] },
      ],
      tensors: [
        { name: 'a', dims: [32, 2], type: 8, data: new Float32Array(64) },
        { name: 'b', dims: [32], type: 8, data: new Float32Array(32) },
        { name: 'c', dims: [4], type: 0, data: new Float32Array(4) },
      ],
    });
    expect(summarizeGGUF(parseGGUF(file))).toEqual({
      version: 3, architecture: 'llama', name: 'tiny', parameterCount: 100, tensorCount: 3, tensorBytes: 118,
      types: [{ type: 8, name: 'Q8_0', tensors: 2, bytes: 102 }, { type: 0, name: 'F32', tensors: 1, bytes: 16 }],
      tokenizerModel: 'llama', vocabSize: 3, contextLength: 256, alignment: 32,
    });
  });
});

describe('parseGGUF: malformed files give a GGUFError', () => {
  it('bad magic names the bytes it found', () => {
    expectGGUFError(utf8.encode('PK\x03\x04 and more bytes here'), /not a GGUF file: it starts with 0x50 0x4b 0x03 0x04 \("PK\.\."\)/);
    expectGGUFError(utf8.encode('GG'), /not a GGUF file: it is only 2 bytes long/);
  });

  it('v1 and unknown versions are UnsupportedError', () => {
    expect(parseError(header(0, 0, 1).bytes())).toBeInstanceOf(UnsupportedError);
    expect(parseError(header(0, 0, 1).bytes()).message).toMatch(/v1/);
    expect(parseError(header(0, 0, 4).bytes()).message).toMatch(/version 4/);
    expect(parseError(header(0, 0, 0x03000000).bytes()).message).toMatch(/big-endian/);
  });

  it('a file cut anywhere before its last tensor ends is "truncated"', () => {
    const file = writeGGUF({
      alignment: 64,
      metadata: [...everyScalar, ...everyArray],
      tensors: [
        { name: 'a', dims: [32, 2], type: 2, data: new Float32Array(64) },
        { name: 'b', dims: [7], type: 0, data: new Float32Array(7) },
      ],
    });
    const parsed = parseGGUF(file);
    const lastEnd = Math.max(...parsed.tensors.map((t) => parsed.dataOffset + t.offset + t.byteSize));
    for (let cut = 0; cut < file.length; cut++) {
      const prefix = file.slice(0, cut);
      if (cut >= lastEnd) {
        expect(parseGGUF(prefix).tensors).toHaveLength(2);
        continue;
      }
      const error = parseError(prefix);
      expect(error, `cut at ${cut}`).toBeInstanceOf(GGUFError);
      expect(error.message).toMatch(cut < 4 ? /not a GGUF file/ : /truncated/);
    }
  });

  it('a prefix of a stream asks for more bytes instead of failing', () => {
    const file = writeGGUF({ metadata: everyArray, tensors: [{ name: 'x', dims: [4], type: 0, data: new Float32Array(4) }] });
    const full = parseGGUF(file);
    for (let cut = 0; cut < full.dataOffset; cut++) {
      const result = parseGGUFPrefix(file.subarray(0, cut), { complete: false, maxHeaderBytes: 1 << 20 });
      if ('needBytes' in result) expect(result.needBytes).toBeGreaterThan(cut);
      else expect(result).toEqual(full); // the infos end before the padding does
    }
  });

  it('absurd counts and lengths fail before anything is allocated', () => {
    const huge = 2n ** 50n;
    expectGGUFError(header(huge, 0).bytes(), /tensor count is 1125899906842624/);
    expectGGUFError(header(0, huge).bytes(), /metadata key\/value count is/);
    expectGGUFError(header(0, 2n ** 63n).bytes(), /absurdly large/);
    const padded = (r: Raw) => r.padTo(1, 64).bytes(); // room for the KV itself, so only the length is absurd
    expectGGUFError(padded(header(0, 1).u64(huge)), /length of metadata key #0 is 1125899906842624, which needs/);
    expectGGUFError(padded(header(0, 1).str('k').u32(8).u64(1e9)), /length of value of k is 1000000000/);
    expectGGUFError(padded(header(0, 1).str('k').u32(9).u32(6).u64(1e9)), /array length of "k" is 1000000000, which needs at least 4000000000 bytes, but only \d+ bytes follow offset \d+ in the file/);
    expectGGUFError(padded(header(0, 1).str('k').u32(9).u32(8).u64(1e9)), /array length of "k" is 1000000000/);
    expectGGUFError(padded(header(0, 1).str('k').u32(9).u32(9).u64(1e9)), /array length of "k" is 1000000000/);
  });

  it('with an unknown total size (a stream), the header cap bounds counts and lengths', () => {
    const bytes = header(0, 1).str('k').u32(9).u32(0).u64(1e9).bytes();
    expect(() => parseGGUFPrefix(bytes, { complete: false, maxHeaderBytes: 1 << 20 })).toThrow(/array length of "k" is 1000000000.*1048576-byte header cap/);
    // Counts that pass the quick check still cannot make the header outgrow the cap.
    const vocab = writeGGUF({ metadata: [{ key: 'v', type: 'array', itemType: 'string', value: Array(100).fill('token') }], tensors: [] });
    expect(parseGGUFPrefix(vocab.subarray(0, 200), { complete: false, maxHeaderBytes: 1000 })).toEqual({ needBytes: expect.any(Number) });
    expect(() => parseGGUFPrefix(vocab.subarray(0, 1000), { complete: false, maxHeaderBytes: 1000 })).toThrow(/the GGUF header is larger than 1000 bytes/);
  });

  it('rejects bad tensor shapes', () => {
    expectGGUFError(header(1, 0).tensor('t', [1, 1, 1, 1, 1], 0, 0).padTo(32, 4).bytes(), /tensor "t" has 5 dimensions/);
    expectGGUFError(header(1, 0).tensor('t', [], 0, 0).padTo(32, 4).bytes(), /tensor "t" has 0 dimensions/);
    expectGGUFError(header(1, 0).tensor('t', [4, 0], 0, 0).padTo(32).bytes(), /tensor "t" has a zero dimension/);
    expectGGUFError(header(1, 0).tensor('t', [2 ** 30, 2 ** 30, 2 ** 30], 0, 0).bytes(), /tensor "t" has more than 2\^53 elements/);
    expectGGUFError(header(1, 0).tensor('t', [2n ** 60n], 0, 0).bytes(), /dimension 0 of tensor t is 1152921504606846976/);
    expectGGUFError(header(1, 0).tensor('t', [2 ** 26, 2 ** 25], 28, 0).bytes(), /tensor "t" is absurdly large \(F64, dims 67108864 x 33554432\)/);
    expectGGUFError(header(1, 0).tensor('t', [33], 2, 0).padTo(32, 64).bytes(), /rows of 33 elements are not a whole number of Q4_0 blocks/);
    expectGGUFError(header(1, 0).tensor('t', [4], 4, 0).padTo(32, 64).bytes(), /tensor "t" has unknown ggml type id 4/);
  });

  it('rejects tensors past the end, misaligned, overlapping or duplicated', () => {
    expectGGUFError(header(1, 0).tensor('t', [1000], 0, 0).padTo(32, 16).bytes(), /truncated: tensor "t" ends at byte/);
    expectGGUFError(header(1, 0).tensor('t', [4], 0, 16).padTo(32, 64).bytes(), /starts at data offset 16, which is not a multiple of the alignment 32/);
    expectGGUFError(
      header(2, 0).tensor('a', [16], 0, 0).tensor('b', [4], 0, 32).padTo(32, 64).bytes(),
      /tensor "b" \(data offset 32\) overlaps tensor "a" \(data offset 0, 64 bytes\)/,
    );
    expectGGUFError(header(2, 0).tensor('a', [4], 0, 0).tensor('a', [4], 0, 32).padTo(32, 64).bytes(), /tensor "a" appears twice/);
    expectGGUFError(header(1, 0).tensor('t', [4], 0, 2n ** 60n).bytes(), /offset of tensor t is/);
  });

  it('rejects bad metadata', () => {
    const kv = (build: (r: Raw) => Raw, count = 1) => build(header(0, count)).bytes();
    expectGGUFError(kv((r) => r.str('a').u32(4).u32(1).str('a').u32(4).u32(2), 2), /metadata key "a" appears twice/);
    expectGGUFError(kv((r) => r.str([0x61, 0xff]).u32(4).u32(1)), /metadata key #0 at offset 32 is not valid UTF-8/);
    expectGGUFError(kv((r) => r.str('k').u32(8).str([0xc3, 0x28])), /value of k at offset \d+ is not valid UTF-8/);
    expectGGUFError(kv((r) => r.str('k').u32(13).u32(0)), /metadata "k" has unknown value type 13/);
    expectGGUFError(kv((r) => r.str('k').u32(9).u32(42).u64(0)), /metadata "k" is an array of unknown value type 42/);
    expectGGUFError(kv((r) => r.str('k').u32(7).u8(2)), /metadata "k" holds 2 where a bool \(0 or 1\) belongs/);
    let deep = header(0, 1).str('k').u32(9);
    for (let i = 0; i < 9; i++) deep = deep.u32(9).u64(1);
    expectGGUFError(deep.u32(4).u64(0).bytes(), /nests arrays more than 8 deep/);
  });

  it('rejects an alignment that is not a power of two', () => {
    for (const value of [0, 48]) {
      expectGGUFError(oneTensorFile(4, (r) => r.str('general.alignment').u32(4).u32(value), 1), new RegExp(`general.alignment must be a power of two, got ${value}`));
    }
    expectGGUFError(oneTensorFile(4, (r) => r.str('general.alignment').u32(8).str('32'), 1), /general.alignment must be a power of two, got 32/);
  });

  it('random corruption never escapes as anything but a RecycleGPTError', () => {
    const file = writeGGUF({
      metadata: [...everyScalar, ...everyArray],
      tensors: [{ name: 'w', dims: [32, 2], type: 8, data: new Float32Array(64).fill(0.5) }],
    });
    let seed = 12345;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const headerEnd = parseGGUF(file).dataOffset;
    let rejected = 0;
    for (let i = 0; i < 3000; i++) {
      const bytes = file.slice();
      for (let j = 0, flips = 1 + random(4); j < flips; j++) bytes[random(headerEnd)] = random(256);
      try {
        parseGGUF(bytes);
      } catch (error) {
        expect(error).toBeInstanceOf(RecycleGPTError);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(100);
  });
});
