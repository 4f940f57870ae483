// rg_kernel_dot: the SIMD128 kernels of sdk/wasm/recyclegpt.wasm against their scalar twins.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const WASM = fileURLToPath(new URL('../sdk/wasm/recyclegpt.wasm', import.meta.url));
const TYPES = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const;
type TypeName = keyof typeof TYPES;

interface Exports {
  memory: WebAssembly.Memory;
  rg_alloc(bytes: number): number;
  rg_free(ptr: number, bytes: number): void;
  rg_kernel_dot(type: number, useSimd: number, w: number, x: number, n: number): number;
  rg_last_error(): number;
}

let rg: Exports;

beforeAll(async () => {
  if (!existsSync(WASM)) throw new Error(`${WASM} is missing: build it with \`node wasm/build.mjs\``);
  const { instance } = await WebAssembly.instantiate(readFileSync(WASM));
  rg = instance.exports as unknown as Exports;
});

let seed = 0x2545f491;
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
}

function halfToFloat(h: number): number {
  const exponent = (h >> 10) & 31;
  const mantissa = h & 1023;
  const magnitude = exponent === 0 ? mantissa * 2 ** -24 : (1 + mantissa / 1024) * 2 ** (exponent - 15);
  return h & 0x8000 ? -magnitude : magnitude;
}

/** A random half with exponent in [lo, hi] (biased), random sign unless positive. */
function randomHalf(lo: number, hi: number, positive = false): number {
  const sign = !positive && random() < 0.5 ? 0x8000 : 0;
  return sign | ((lo + Math.floor(random() * (hi - lo + 1))) << 10) | Math.floor(random() * 1024);
}

/** One random row of `type`: its GGUF bytes and its values. */
function randomRow(type: TypeName, n: number): { bytes: Uint8Array; values: Float64Array } {
  const values = new Float64Array(n);
  if (type === 'F32') {
    const f = new Float32Array(n).map(() => random() * 2 - 1);
    values.set(f);
    return { bytes: new Uint8Array(f.buffer), values };
  }
  if (type === 'F16') {
    const h = new Uint16Array(n).map(() => randomHalf(10, 16));
    h.forEach((v, i) => (values[i] = halfToFloat(v)));
    return { bytes: new Uint8Array(h.buffer), values };
  }
  const blockBytes = type === 'Q8_0' ? 34 : 18;
  const bytes = new Uint8Array((n / 32) * blockBytes);
  for (let b = 0; b < n / 32; b++) {
    const block = bytes.subarray(b * blockBytes, (b + 1) * blockBytes);
    const scale = randomHalf(5, 10, true);
    block[0] = scale & 255;
    block[1] = scale >> 8;
    const d = halfToFloat(scale);
    for (let j = 2; j < blockBytes; j++) block[j] = Math.floor(random() * 256);
    for (let j = 0; j < 32; j++) {
      const q = type === 'Q8_0' ? (block[2 + j] << 24) >> 24 : j < 16 ? (block[2 + j] & 15) - 8 : (block[2 + j - 16] >> 4) - 8;
      values[b * 32 + j] = q * d;
    }
  }
  return { bytes, values };
}

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

const LENGTHS: Record<TypeName, number[]> = {
  F32: [1, 7, 32, 33, 100, 512, 1376, 4096],
  F16: [1, 7, 32, 33, 100, 512, 1376, 4096],
  Q8_0: [32, 64, 96, 160, 512, 1376, 4096],
  Q4_0: [32, 64, 96, 160, 512, 1376, 4096],
};

describe('rg_kernel_dot SIMD128 vs scalar', () => {
  for (const type of Object.keys(TYPES) as TypeName[]) {
    it(`${type}: equal up to float reassociation`, () => {
      for (const n of LENGTHS[type]) {
        for (let trial = 0; trial < 4; trial++) {
          const { bytes, values } = randomRow(type, n);
          const x = new Float32Array(n).map(() => random() * 6 - 3);
          const { scalar, simd } = dotBoth(type, bytes, x);
          let exact = 0;
          let magnitude = 0;
          values.forEach((w, i) => {
            exact += w * x[i];
            magnitude += Math.abs(w * x[i]);
          });
          // Both kernels add the same terms in different orders; each ordering is within
          // terms·2^-24·Σ|term| of the exact sum, so they differ by at most twice that.
          // F32/F16 add n products; Q8_0/Q4_0 add only n/32 exact per-block integer sums
          // times a scale, which makes the bound 32× tighter. The activation's own
          // quantization (up to half a step per element) adds slack to Σ|term|.
          const terms = type === 'F32' || type === 'F16' ? n : n / 32;
          const slack = type === 'F32' ? 1 : 1.1;
          expect(Math.abs(simd - scalar)).toBeLessThanOrEqual(2 * terms * 2 ** -24 * magnitude * slack);
          // And both are right: activation rounding (f16, 8-bit) costs at most ~1% of Σ|term|.
          expect(Math.abs(simd - exact)).toBeLessThanOrEqual((type === 'F32' ? 1e-5 : 1e-2) * magnitude);
        }
      }
    });
  }

  it('runs the SIMD path for real: long f32 sums round differently in 4 lanes', () => {
    let differing = 0;
    for (let trial = 0; trial < 8; trial++) {
      const { bytes } = randomRow('F32', 4096);
      const x = new Float32Array(4096).map(() => random() * 2 - 1);
      const { scalar, simd } = dotBoth('F32', bytes, x);
      if (scalar !== simd) differing++;
    }
    expect(differing).toBeGreaterThan(0);
  });

  it('refuses partial quantized blocks and unknown types with NaN and an error code', () => {
    const ptr = rg.rg_alloc(64) >>> 0;
    expect(Number.isNaN(rg.rg_kernel_dot(TYPES.Q8_0, 1, ptr, ptr, 33))).toBe(true);
    expect(rg.rg_last_error()).toBeLessThan(0);
    expect(Number.isNaN(rg.rg_kernel_dot(3, 1, ptr, ptr, 32))).toBe(true);
    expect(rg.rg_last_error()).toBeLessThan(0);
    rg.rg_free(ptr, 64);
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
