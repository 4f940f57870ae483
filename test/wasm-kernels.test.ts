// rg_kernel_dot: the SIMD128 kernels of sdk/wasm/recyclegpt.wasm against their scalar twins and
// against ggml's own generic kernels (test/fixtures/ggml-dot-golden.txt).
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BLOCK_LENGTHS,
  BLOCKS,
  halfToFloat,
  random,
  randomActivation,
  randomBlockRow,
  randomFloatRow,
  randomHalf,
  TYPES,
  type TypeName,
} from './fixtures/kernel-rows.js';

const WASM = fileURLToPath(new URL('../sdk/wasm/recyclegpt.wasm', import.meta.url));
const GOLDEN = fileURLToPath(new URL('./fixtures/ggml-dot-golden.txt', import.meta.url));
interface Exports {
  memory: WebAssembly.Memory;
  rg_alloc(bytes: number): number;
  rg_free(ptr: number, bytes: number): void;
  rg_kernel_dot(type: number, useSimd: number, w: number, x: number, n: number): number;
  rg_kernel_map(op: number, useSimd: number, values: number, n: number, arg: number): number;
  rg_last_error(): number;
}

let rg: Exports;

beforeAll(async () => {
  if (!existsSync(WASM)) throw new Error(`${WASM} is missing: build it with \`node wasm/build.mjs\``);
  const { instance } = await WebAssembly.instantiate(readFileSync(WASM));
  rg = instance.exports as unknown as Exports;
});

/** Calls rg_kernel_dot with both kernels on copies of w and x in wasm memory. */
function dotBoth(type: TypeName, w: Uint8Array, x: Float32Array): { scalar: number; simd: number } {
  const wPtr = rg.rg_alloc(w.length) >>> 0;
  const xPtr = rg.rg_alloc(x.byteLength) >>> 0;
  new Uint8Array(rg.memory.buffer, wPtr, w.length).set(w);
  new Float32Array(rg.memory.buffer, xPtr, x.length).set(x);
  const scalar = rg.rg_kernel_dot(TYPES[type], 0, wPtr, xPtr, x.length);
  const simd = rg.rg_kernel_dot(TYPES[type], 1, wPtr, xPtr, x.length);
  expect(rg.rg_last_error()).toBe(0);
  rg.rg_free(wPtr, w.length);
  rg.rg_free(xPtr, x.byteLength);
  return { scalar, simd };
}

/** `got` is the dot of bfloat16 weights `w` with x rounded to bfloat16, up to f32 rounding. */
function expectNearBf16Dot(w: Uint8Array, x: Float32Array, got: number): void {
  const widen = (h: number) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]!;
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const round = (b: number) => widen((b + 0x7fff + ((b >>> 16) & 1)) >>> 16); // x finite here
  const terms = Array.from(new Uint16Array(w.buffer, w.byteOffset, x.length), (h, i) => widen(h) * round(bits[i]!));
  const exact = terms.reduce((a, b) => a + b, 0);
  const magnitude = terms.reduce((a, b) => a + Math.abs(b), 0);
  expect(Math.abs(got - exact)).toBeLessThanOrEqual(x.length * 2 ** -24 * magnitude);
}

const FLOAT_LENGTHS = [1, 7, 32, 33, 100, 512, 1376, 4096];

describe('rg_kernel_dot SIMD128 vs scalar', () => {
  for (const type of ['F32', 'F16'] as const) {
    it(`${type}: equal up to float reassociation`, () => {
      for (const n of FLOAT_LENGTHS) {
        for (let trial = 0; trial < 4; trial++) {
          const { bytes, values } = randomFloatRow(type, n);
          const x = new Float32Array(n).map(() => random() * 6 - 3);
          const { scalar, simd } = dotBoth(type, bytes, x);
          let exact = 0;
          let magnitude = 0;
          values.forEach((w, i) => {
            exact += w * x[i];
            magnitude += Math.abs(w * x[i]);
          });
          // Both kernels add the same n products in different orders; each ordering is within
          // n·2^-24·Σ|term| of the exact sum, so they differ by at most twice that (plus the
          // f16 rounding of x in Σ|term|).
          const slack = type === 'F32' ? 1 : 1.1;
          expect(Math.abs(simd - scalar)).toBeLessThanOrEqual(2 * n * 2 ** -24 * magnitude * slack);
          // And both are right: rounding x to f16 costs at most ~0.1% of Σ|term|.
          expect(Math.abs(simd - exact)).toBeLessThanOrEqual((type === 'F32' ? 1e-5 : 1e-2) * magnitude);
        }
      }
    });
  }

  // The hook itself returns NaN unless the activation conversions of both kernels, the packed
  // and raw rows and 1..=3 tokens all agree bit for bit; here the SIMD128 twin also equals the scalar one.
  const blockTypes = (Object.keys(TYPES) as TypeName[]).filter((t) => t !== 'F32' && t !== 'F16');
  for (const type of blockTypes) {
    it(`${type}: bit-identical, every path`, () => {
      for (const n of BLOCK_LENGTHS[BLOCKS[type]?.size ?? 1]!) {
        for (let trial = 0; trial < 4; trial++) {
          const [w, x] = [randomBlockRow(type, n), randomActivation(n, trial)];
          const { scalar, simd } = dotBoth(type, w, x);
          expect(Number.isFinite(scalar), `${type} n ${n} trial ${trial}: ${scalar}`).toBe(true);
          expect(Object.is(simd, scalar), `${type} n ${n} trial ${trial}: simd ${simd}, scalar ${scalar}`).toBe(true);
          if (type === 'BF16') expectNearBf16Dot(w, x, simd);
        }
      }
    });
  }

  it('runs the SIMD path for real: long f32 sums round differently in 4 lanes', () => {
    let differing = 0;
    for (let trial = 0; trial < 8; trial++) {
      const { bytes } = randomFloatRow('F32', 4096);
      const x = new Float32Array(4096).map(() => random() * 2 - 1);
      const { scalar, simd } = dotBoth('F32', bytes, x);
      if (scalar !== simd) differing++;
    }
    expect(differing).toBeGreaterThan(0);
  });

  it('refuses partial quantized blocks and unknown types with NaN and an error code', () => {
    const ptr = rg.rg_alloc(1024) >>> 0;
    expect(Number.isNaN(rg.rg_kernel_dot(TYPES.Q8_0, 1, ptr, ptr, 33))).toBe(true);
    expect(rg.rg_last_error()).toBeLessThan(0);
    expect(Number.isNaN(rg.rg_kernel_dot(TYPES.Q4_K, 1, ptr, ptr, 128))).toBe(true);
    expect(rg.rg_last_error()).toBeLessThan(0);
    for (const unknown of [9, 15, 16, 20, 23, 34, 39]) {
      // Q8_1 and Q8_K (activation types only), IQ2_XXS, IQ4_NL, IQ4_XS, TQ1_0, MXFP4
      expect(Number.isNaN(rg.rg_kernel_dot(unknown, 1, ptr, ptr, 256))).toBe(true);
      expect(rg.rg_last_error()).toBeLessThan(0);
    }
    rg.rg_free(ptr, 1024);
  });
});

describe('rg_kernel_map: element-wise SIMD128 kernels (vector body + scalar tail) vs scalar', () => {
  const OPS = { roundToF16: 0, expShifted: 1, f16RoundTrip: 2, siluTimes: 3 } as const;

  /** Values from 2^-30 to 2^20 of both signs, halves' ties, zeros and specials (NaN excluded for exp). */
  function values(n: number, withNaN: boolean): Float32Array {
    const x = new Float32Array(n).map(() => (random() < 0.5 ? -1 : 1) * 2 ** (random() * 50 - 30));
    for (let i = 0; i < n; i += 7) x[i] = (Math.floor(random() * 2048) + 0.5) * 2 ** -10; // ties of f16 rounding
    if (n > 3) [x[1], x[2]] = [0, -Infinity];
    if (withNaN && n > 4) x[3] = NaN;
    x[n - 1] = 1 + 3 * 2 ** -12; // the last value (in the tail unless n is a multiple of 4) moves under every op
    return x;
  }

  function both(op: number, x: Float32Array, arg: number): { scalar: Uint32Array; simd: Uint32Array } {
    const ptr = rg.rg_alloc(x.byteLength) >>> 0;
    const run = (useSimd: number) => {
      new Float32Array(rg.memory.buffer, ptr, x.length).set(x);
      expect(rg.rg_kernel_map(op, useSimd, ptr, x.length, arg)).toBe(0);
      return new Uint32Array(rg.memory.buffer.slice(ptr, ptr + x.byteLength));
    };
    const result = { scalar: run(0), simd: run(1) };
    rg.rg_free(ptr, x.byteLength);
    return result;
  }

  // Every length up to 40 (off every vector width: 4, 8, 16 lanes) and a few long ones: the tail past the
  // last whole vector must be computed too, so dropping it changes these bits.
  const LENGTHS = [...Array.from({ length: 40 }, (_, i) => i + 1), 61, 127, 1027];

  for (const [name, op] of Object.entries(OPS)) {
    it(`${name}: bit-identical at every length`, () => {
      for (const n of LENGTHS) {
        // exp's arguments within its range (and a few beyond, for silu: exp(-g) overflows below -88.7).
        const x = op === OPS.expShifted ? values(n, false).map((v) => Math.max(-80, Math.min(v, 80))) : values(n, true);
        if (op === OPS.siluTimes && n > 6) [x[5], x[6]] = [-100, 95];
        const { scalar, simd } = both(op, x, op === OPS.expShifted ? 1.5 : op === OPS.siluTimes ? -0.75 : 0);
        expect([...simd], `${name} n ${n}`).toEqual([...scalar]);
        expect(simd[n - 1], `${name} n ${n}: the last value`).not.toBe(new Uint32Array(x.buffer)[n - 1]);
      }
    });
  }

  it('rounds to f16 as the halves spell it, tail included', () => {
    // 1 + 2^-11 is a tie between 1 and 1 + 2^-10: to even, 1; 1 + 3·2^-11 rounds up to 1 + 2^-9.
    for (const n of [1, 3, 5, 9, 17, 33]) {
      const x = new Float32Array(n).map((_, i) => (i % 2 ? 1 + 3 * 2 ** -11 : 1 + 2 ** -11));
      const { simd } = both(OPS.roundToF16, x, 0);
      expect([...new Float32Array(simd.buffer)], `n ${n}`).toEqual(Array.from({ length: n }, (_, i) => (i % 2 ? 1 + 2 ** -9 : 1)));
    }
  });

  it('refuses an unknown op', () => {
    const ptr = rg.rg_alloc(16) >>> 0;
    expect(rg.rg_kernel_map(9, 1, ptr, 4, 0)).toBeLessThan(0);
    rg.rg_free(ptr, 16);
  });
});

describe('rg_kernel_dot against ggml (test/fixtures/ggml-dot-golden.txt)', () => {
  const hex = (s: string) => Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));
  const lines = readFileSync(GOLDEN, 'utf8').trim().split('\n').map((l) => l.split(' '));
  const xs = lines.filter((l) => l[0] === 'x').map((l) => new Float32Array(hex(l[2]!).buffer));
  const weights = new Map(lines.filter((l) => l[0] === 'w').map((l) => [`${l[1]} ${l[2]}`, hex(l[3]!)]));

  it("gives ggml's generic dot bit for bit, scalar and SIMD128, for every quantized type", () => {
    const dots = lines.filter((l) => l[0] === 'dot');
    expect(dots.length).toBe(60);
    for (const [, type, row, x, bits] of dots) {
      const want = new Float32Array(hex(bits!).buffer)[0]!;
      const { scalar, simd } = dotBoth(type as TypeName, weights.get(`${type} ${row}`)!, xs[Number(x)]!);
      expect([scalar, simd], `${type} row ${row} · x${x}`).toEqual([want, want]);
    }
  });

});

describe('rg_kernel_dot F16: the SIMD128 widening of halves', () => {
  /** Every (row, x) pair through both kernels, in one pair of wasm buffers. */
  function dotsBoth(rows: Uint16Array[], xs: Float32Array[]): { scalar: number; simd: number }[] {
    const n = xs[0]!.length;
    const wPtr = rg.rg_alloc(n * 2) >>> 0;
    const xPtr = rg.rg_alloc(n * 4) >>> 0;
    const results = rows.map((row, i) => {
      new Uint16Array(rg.memory.buffer, wPtr, n).set(row);
      new Float32Array(rg.memory.buffer, xPtr, n).set(xs[i]!);
      return { scalar: rg.rg_kernel_dot(TYPES.F16, 0, wPtr, xPtr, n), simd: rg.rg_kernel_dot(TYPES.F16, 1, wPtr, xPtr, n) };
    });
    expect(rg.rg_last_error()).toBe(0);
    rg.rg_free(wPtr, n * 2);
    rg.rg_free(xPtr, n * 4);
    return results;
  }

  function exactHalf(h: number): number {
    if (((h >> 10) & 31) !== 31) return halfToFloat(h);
    if (h & 1023) return NaN;
    return h & 0x8000 ? -Infinity : Infinity;
  }

  it('widens all 65536 halves exactly, in every SIMD lane', () => {
    // Row of 16 (all in the vector body) holding one half at lane h % 16, times a one-hot x:
    // the dot is that half's value.
    const rows: Uint16Array[] = [];
    const xs: Float32Array[] = [];
    for (let h = 0; h < 65536; h++) {
      const row = new Uint16Array(16);
      const x = new Float32Array(16);
      row[h % 16] = h;
      x[h % 16] = 1;
      rows.push(row);
      xs.push(x);
    }
    const wrong: string[] = [];
    dotsBoth(rows, xs).forEach(({ scalar, simd }, h) => {
      const want = exactHalf(h);
      const same = (v: number) => (Number.isNaN(want) ? Number.isNaN(v) : v === want);
      if (!same(scalar) || !same(simd)) wrong.push(`${h.toString(16)}: scalar ${scalar}, simd ${simd}, want ${want}`);
    });
    expect(wrong.slice(0, 5)).toEqual([]);
  });

  it('rows of subnormals, extremes and infinities agree with the scalar kernel', () => {
    const n = 100; // vector body and scalar tail
    const cases: { row: Uint16Array; x: Float32Array }[] = [];
    for (let trial = 0; trial < 16; trial++) {
      const subnormals = new Uint16Array(n).map(() => randomHalf(0, 0));
      const extremes = new Uint16Array(n).map(() => randomHalf(0, 30));
      const withInf = extremes.slice();
      withInf[Math.floor(random() * n)] = trial % 2 ? 0xfc00 : 0x7c00;
      const withNaN = extremes.slice();
      withNaN[Math.floor(random() * n)] = 0x7e00 | trial;
      for (const row of [subnormals, extremes, withInf, withNaN]) {
        cases.push({ row, x: new Float32Array(n).map(() => random() * 2 - 1) });
      }
    }
    const results = dotsBoth(
      cases.map((c) => c.row),
      cases.map((c) => c.x),
    );
    results.forEach(({ scalar, simd }, i) => {
      const { row, x } = cases[i]!;
      const kind = i % 4;
      if (kind === 3) {
        expect(Number.isNaN(scalar) && Number.isNaN(simd)).toBe(true);
      } else if (kind === 2) {
        // The infinity dominates every finite product (x is never rounded to 0 here).
        expect(simd).toBe(scalar);
        expect(Math.abs(simd)).toBe(Infinity);
      } else {
        let magnitude = 0;
        row.forEach((h, j) => (magnitude += Math.abs(halfToFloat(h) * Math.fround(x[j]!))));
        expect(Math.abs(simd - scalar)).toBeLessThanOrEqual(2 * n * 2 ** -24 * magnitude * 1.1 + 2 ** -149);
        if (kind === 0) expect(simd).not.toBe(0); // subnormal weights were not flushed
      }
    });
  });
});
