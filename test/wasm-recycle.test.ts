// The recycle head and the multi-token kernels of sdk/wasm/recyclegpt.wasm, through its C ABI:
// head logits against a small f64 reference, and batched passes bit-identical to single tokens.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { EngineExports } from '../sdk/src/binding.js';

const WASM = fileURLToPath(new URL('../sdk/wasm/recyclegpt.wasm', import.meta.url));
const F32 = 0;
const Q4_0 = 2;
const Q8_0 = 8;

/** The ABI calls these tests make, as the SDK's binding types them. */
type Exports = Pick<
  EngineExports,
  | 'memory' | 'rg_alloc' | 'rg_free' | 'rg_model_new' | 'rg_tensor_reserve' | 'rg_model_ready' | 'rg_forward' | 'rg_logits'
  | 'rg_hidden' | 'rg_model_free' | 'rg_last_error' | 'rg_recycle_new' | 'rg_recycle_reserve' | 'rg_recycle_ready'
  | 'rg_recycle_forward' | 'rg_recycle_logits' | 'rg_recycle_hidden'
>;

let rg: Exports;

beforeAll(async () => {
  if (!existsSync(WASM)) throw new Error(`${WASM} is missing: build it with \`node wasm/build.mjs\``);
  const { instance } = await WebAssembly.instantiate(readFileSync(WASM));
  rg = instance.exports as unknown as Exports;
});

let seed = 0x1234567;
function uniform(a: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return ((seed >>> 0) / 2 ** 32 - 0.5) * 2 * a;
}

/** Layer shape of a base model or a head (a head's vocab and dim are its base's). */
interface Shape {
  vocab: number;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  ctx: number;
  headDim: number;
  ropeDim: number;
  ropeBase: number;
  eps: number;
  maxBatch: number;
  kvF16?: boolean;
  /** With kvF16: the f16 values kept widened in f32 (config word 11 = 2). */
  kvWide?: boolean;
  /** Config words 13..23 (llama's when absent) and the optional tensors the architecture's model has. */
  arch?: Arch;
}

interface Arch {
  /** Word 13: 1 NEOX RoPE, 2 Q/K norms, 4 post norms, 8 GELU, 16 scaled embedding, 32 scaled queries, 64 RoPE factors. */
  flags: number;
  /** Words 14..23 after the flags. */
  words: number[];
  biases?: boolean;
  ropeFreqs?: boolean;
}

const f32Bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!;
/** Words 14..23 of a model with one KV sequence, no RoPE scaling, no sliding window, plain logits. */
const PLAIN_WORDS = (ctx: number) => [1, 0, 0, f32Bits(1), ctx, 0, 0, 0, 0, 0];
/** The architectures' options as the SDK passes them (binding.ts modelWords), on small shapes. */
const ARCHS: Record<string, (ctx: number) => Arch> = {
  llama3: () => ({ flags: 64, words: [1, 2, f32Bits(4), f32Bits(1), 4, 0, 0, 0, 0, 0], ropeFreqs: true }),
  qwen2: (ctx) => ({ flags: 1, words: PLAIN_WORDS(ctx), biases: true }),
  qwen3: (ctx) => ({ flags: 3, words: PLAIN_WORDS(ctx) }),
  gemma3: (ctx) => ({ flags: 63, words: [1, 1, f32Bits(2), f32Bits(1), ctx, 3, 2, f32Bits(10000), 0, f32Bits(30)] }),
};

/** Dequantized weights by `${kind}:${layer}`. */
type Weights = Map<string, Float64Array>;

const u32 = (ptr: number, n: number) => new Uint32Array(rg.memory.buffer, ptr, n);
const f32 = (ptr: number, n: number) => new Float32Array(rg.memory.buffer, ptr, n);
const bitsOf = (v: Float32Array) => Array.from(new Uint32Array(v.slice().buffer));

/** Runs `call` with `values` copied into an rg_alloc buffer (as u32 words). */
function withWords<T>(values: ArrayLike<number>, call: (ptr: number) => T): T {
  const ptr = rg.rg_alloc(values.length * 4) >>> 0;
  u32(ptr, values.length).set(values);
  try {
    return call(ptr);
  } finally {
    rg.rg_free(ptr, values.length * 4);
  }
}

function configWords(s: Shape): number[] {
  const llama = [s.vocab, s.dim, s.layers, s.heads, s.kvHeads, s.ffn, s.ctx, s.headDim, s.ropeDim, f32Bits(s.ropeBase), f32Bits(s.eps), s.kvF16 ? (s.kvWide ? 2 : 1) : 0, s.maxBatch];
  return [...llama, s.arch?.flags ?? 0, ...(s.arch?.words ?? PLAIN_WORDS(s.ctx))];
}

/** Random bytes of `rows × cols` values of `type` (F32, Q8_0, Q4_0) and the values they hold. */
function randomTensor(type: number, rows: number, cols: number): { bytes: Uint8Array; values: Float64Array } {
  const amplitude = 1 / Math.sqrt(cols);
  if (type === F32) {
    const f = new Float32Array(rows * cols).map(() => uniform(amplitude));
    return { bytes: new Uint8Array(f.buffer), values: Float64Array.from(f) };
  }
  // One fixed f16 scale per block: 0x2000 = 2^-7, enough for these tiny models.
  const blockBytes = type === Q8_0 ? 34 : 18;
  const bytes = new Uint8Array((rows * cols * blockBytes) / 32).map(() => Math.floor((uniform(1) + 1) * 128));
  const values = new Float64Array(rows * cols);
  for (let b = 0; b < (rows * cols) / 32; b++) {
    const block = bytes.subarray(b * blockBytes, (b + 1) * blockBytes);
    block.set([0x00, 0x20]);
    for (let j = 0; j < 32; j++) {
      const q = type === Q8_0 ? (block[2 + j] << 24) >> 24 : j < 16 ? (block[2 + j] & 15) - 8 : (block[2 + j - 16] >> 4) - 8;
      values[b * 32 + j] = q * 2 ** -7;
    }
  }
  return { bytes, values };
}

type Reserve = (model: number, kind: number, layer: number, type: number, rows: number, cols: number) => number;

/** Reserves and writes random weights (`matrices` of `type`, norms F32) through `reserve`. */
function fillTensors(reserve: Reserve, model: number, s: Shape, matrices: number[][], type: number): Weights {
  const weights: Weights = new Map();
  const put = (kind: number, layer: number, t: number, rows: number, cols: number, bytes: Uint8Array) => {
    const ptr = reserve(model, kind, layer, t, rows, cols) >>> 0;
    if (!ptr) throw new Error(`reserve kind ${kind} layer ${layer}: error ${rg.rg_last_error()}`);
    new Uint8Array(rg.memory.buffer, ptr, bytes.length).set(bytes);
  };
  for (const [kind, rows, cols] of matrices) {
    for (let layer = 0; layer < (kind < 3 ? 1 : s.layers); layer++) {
      const { bytes, values } = randomTensor(type, rows, cols);
      put(kind, layer, type, rows, cols, bytes);
      weights.set(`${kind}:${layer}`, values);
    }
  }
  // Vectors: norms near 1, biases near 0, RoPE factors from 1 to 8; [kind, length, center].
  const { flags = 0, biases, ropeFreqs } = s.arch ?? {};
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const vectors = [[1, s.dim, 1], [3, s.dim, 1], [8, s.dim, 1]];
  if (ropeFreqs) vectors.push([12, s.ropeDim / 2, 4.5]);
  if (biases) vectors.push([13, q, 0], [14, kv, 0], [15, kv, 0]);
  if (flags & 2) vectors.push([16, s.headDim, 1], [17, s.headDim, 1]);
  if (flags & 4) vectors.push([18, s.dim, 1], [19, s.dim, 1]);
  for (const [kind, length, center] of vectors) {
    for (let layer = 0; layer < (kind === 1 || kind === 12 ? 1 : s.layers); layer++) {
      const values = new Float32Array(length).map(() => center + uniform(kind === 12 ? 3.5 : 0.2));
      put(kind, layer, F32, 1, length, new Uint8Array(values.buffer));
      weights.set(`${kind}:${layer}`, Float64Array.from(values));
    }
  }
  return weights;
}

/** [kind, rows, cols] of every matrix kind of `s` (blk kinds once). */
function matrices(s: Shape): number[][] {
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  return [[0, s.vocab, s.dim], [2, s.vocab, s.dim], [4, q, s.dim], [5, kv, s.dim], [6, kv, s.dim], [7, s.dim, q], [9, s.ffn, s.dim], [10, s.ffn, s.dim], [11, s.dim, s.ffn]];
}

function buildBase(s: Shape, type: number, tied: boolean): { model: number; weights: Weights } {
  const model = withWords(configWords(s), (ptr) => rg.rg_model_new(ptr, 24));
  expect(model, `rg_model_new: error ${rg.rg_last_error()}`).not.toBe(0);
  const weights = fillTensors(rg.rg_tensor_reserve, model, s, matrices(s).filter(([kind]) => !(tied && kind === 2)), type);
  expect(rg.rg_model_ready(model)).toBe(0);
  return { model, weights };
}

/** Attaches and readies a head: kind 0 is recycle.proj.weight (dim × 2·dim), no kind 2. */
function attachHead(model: number, head: Shape, type: number): Weights {
  expect(withWords(configWords(head).slice(2, 13), (ptr) => rg.rg_recycle_new(model, ptr, 11))).toBe(0);
  const kinds = matrices(head).filter(([kind]) => kind !== 2);
  kinds[0] = [0, head.dim, 2 * head.dim];
  const weights = fillTensors(rg.rg_recycle_reserve, model, head, kinds, type);
  expect(rg.rg_recycle_ready(model)).toBe(0);
  return weights;
}

// ---- f64 reference of the head ----

const matvec = (w: Float64Array, x: ArrayLike<number>) =>
  Float64Array.from({ length: w.length / x.length }, (_, r) => {
    let sum = 0;
    for (let c = 0; c < x.length; c++) sum += w[r * x.length + c] * x[c];
    return sum;
  });

function rmsNorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  const scale = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + eps);
  return x.map((v, i) => v * scale * w[i]);
}

function rope(x: Float64Array, s: Shape, pos: number): void {
  for (let h = 0; h < x.length; h += s.headDim) {
    for (let i = 0; i < s.ropeDim / 2; i++) {
      const theta = pos * s.ropeBase ** ((-2 * i) / s.ropeDim);
      const [x0, x1] = [x[h + 2 * i], x[h + 2 * i + 1]];
      x[h + 2 * i] = x0 * Math.cos(theta) - x1 * Math.sin(theta);
      x[h + 2 * i + 1] = x0 * Math.sin(theta) + x1 * Math.cos(theta);
    }
  }
}

/** Head logits for rows (hidden h_t, token x_{t+1}) at positions 0, 1, ...: proj, llama layers, norm, base output. */
function referenceHead(s: Shape, w: Weights, embd: Float64Array, output: Float64Array, rows: { hidden: Float32Array; token: number }[]) {
  const get = (kind: number, layer = 0) => w.get(`${kind}:${layer}`)!;
  const keys: Float64Array[][] = Array.from({ length: s.layers }, () => []);
  const values: Float64Array[][] = Array.from({ length: s.layers }, () => []);
  return rows.map(({ hidden, token }, pos) => {
    const input = [...hidden, ...embd.subarray(token * s.dim, (token + 1) * s.dim)];
    const x = matvec(get(0), input);
    for (let l = 0; l < s.layers; l++) {
      const xb = rmsNorm(x, get(3, l), s.eps);
      const q = matvec(get(4, l), xb);
      const k = matvec(get(5, l), xb);
      rope(q, s, pos);
      rope(k, s, pos);
      keys[l].push(k);
      values[l].push(matvec(get(6, l), xb));
      const att = new Float64Array(q.length);
      for (let h = 0; h < s.heads; h++) {
        const kvOffset = Math.floor(h / (s.heads / s.kvHeads)) * s.headDim;
        const scores = keys[l].map((key) => {
          let dot = 0;
          for (let i = 0; i < s.headDim; i++) dot += q[h * s.headDim + i] * key[kvOffset + i];
          return dot / Math.sqrt(s.headDim);
        });
        const max = Math.max(...scores);
        const exps = scores.map((v) => Math.exp(v - max));
        const total = exps.reduce((a, b) => a + b, 0);
        exps.forEach((p, j) => {
          for (let i = 0; i < s.headDim; i++) att[h * s.headDim + i] += (p / total) * values[l][j][kvOffset + i];
        });
      }
      matvec(get(7, l), att).forEach((v, i) => (x[i] += v));
      const xf = rmsNorm(x, get(8, l), s.eps);
      const gate = matvec(get(9, l), xf);
      const up = matvec(get(10, l), xf);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      matvec(get(11, l), act).forEach((v, i) => (x[i] += v));
    }
    return matvec(output, rmsNorm(x, get(1), s.eps));
  });
}

function relativeError(got: Float32Array, want: Float64Array): number {
  let diff = 0;
  let scale = 0;
  want.forEach((v, i) => {
    diff = Math.max(diff, Math.abs(got[i] - v));
    scale = Math.max(scale, Math.abs(v));
  });
  return diff / scale;
}

// ---- tests ----

const BASE: Shape = { vocab: 29, dim: 16, layers: 1, heads: 4, kvHeads: 2, ffn: 24, ctx: 8, headDim: 4, ropeDim: 4, ropeBase: 10000, eps: 1e-5, maxBatch: 4 };
const HEAD: Shape = { ...BASE, layers: 1, heads: 4, kvHeads: 1, ffn: 20, headDim: 6, ropeDim: 4, ropeBase: 1000, eps: 1e-6, maxBatch: 3 };
const TOKENS = [3, 28, 0, 17, 5];

describe('recycle head (rg_recycle_*)', () => {
  for (const tied of [false, true]) {
    for (const layers of [1, 2]) {
      it(`matches an f64 reference (${tied ? 'tied' : 'untied'} output, ${layers} head layer(s), GQA)`, () => {
        const head = { ...HEAD, layers };
        const base = buildBase(BASE, F32, tied);
        const w = attachHead(base.model, head, F32);
        const tokensPtr = rg.rg_alloc(4 * 4) >>> 0;
        u32(tokensPtr, 4).set(TOKENS.slice(0, 4));
        expect(rg.rg_forward(base.model, tokensPtr, 4, 0, 4)).toBe(0); // hidden rows only
        const hiddenPtr = rg.rg_hidden(base.model) >>> 0;
        const rows = [0, 1, 2, 3].map((t) => ({ hidden: f32(hiddenPtr + t * BASE.dim * 4, BASE.dim).slice(), token: TOKENS[t + 1] }));
        const embd = base.weights.get('0:0')!;
        const want = referenceHead(head, w, embd, tied ? embd : base.weights.get('2:0')!, rows);
        // Row by row, each reading h_t straight from rg_hidden's buffer.
        rows.forEach(({ token }, pos) => {
          u32(tokensPtr, 1)[0] = token;
          expect(rg.rg_recycle_forward(base.model, hiddenPtr + pos * BASE.dim * 4, tokensPtr, 1, pos, 0)).toBe(0);
          const logits = f32(rg.rg_recycle_logits(base.model) >>> 0, BASE.vocab);
          expect(relativeError(logits, want[pos])).toBeLessThan(1e-4);
        });
        rg.rg_free(tokensPtr, 16);
        rg.rg_model_free(base.model);
      });
    }
  }

  it('gives batched rows the single-row results bit for bit (Q4_0 head, f16 KV)', () => {
    const base: Shape = { ...BASE, vocab: 40, dim: 64, headDim: 16, ffn: 96, kvF16: true };
    const head: Shape = { ...base, heads: 4, kvHeads: 2, ffn: 64, maxBatch: 3 };
    const { model } = buildBase(base, Q8_0, true);
    attachHead(model, head, Q4_0);
    const n = 3;
    const hiddenPtr = rg.rg_alloc(n * base.dim * 4) >>> 0;
    f32(hiddenPtr, n * base.dim).set(Float32Array.from({ length: n * base.dim }, () => uniform(2)));
    const tokensPtr = rg.rg_alloc(n * 4) >>> 0;
    u32(tokensPtr, n).set([7, 39, 1]);
    const singles = [0, 1, 2].map((i) => {
      expect(rg.rg_recycle_forward(model, hiddenPtr + i * base.dim * 4, tokensPtr + i * 4, 1, i, 0)).toBe(0);
      return bitsOf(f32(rg.rg_recycle_logits(model) >>> 0, base.vocab));
    });
    expect(rg.rg_recycle_forward(model, hiddenPtr, tokensPtr, n, 0, 0)).toBe(0);
    const batched = f32(rg.rg_recycle_logits(model) >>> 0, n * base.vocab);
    singles.forEach((single, i) => expect(bitsOf(batched.subarray(i * base.vocab, (i + 1) * base.vocab))).toEqual(single));
    rg.rg_free(hiddenPtr, n * base.dim * 4);
    rg.rg_free(tokensPtr, n * 4);
    rg.rg_model_free(model);
  });
});

describe('multi-token kernels through rg_forward', () => {
  const SHAPE: Shape = { vocab: 40, dim: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 96, ctx: 8, headDim: 16, ropeDim: 16, ropeBase: 10000, eps: 1e-5, maxBatch: 4, kvF16: true };
  const tokens = [5, 9, 0, 39, 12, 12, 33, 2];

  const cases = [
    ...(['Q8_0', 'Q4_0'] as const).map((type) => ['llama', type] as const),
    ...Object.keys(ARCHS).flatMap((arch) => (['F32', 'Q8_0', 'Q4_0'] as const).map((type) => [arch, type] as const)),
  ];
  for (const [arch, name] of cases) {
    it(`${arch} ${name}: passes of 1 to 4 tokens give each token its single-token logits and hidden state`, () => {
      const type = { F32, Q8_0, Q4_0 }[name];
      const { model } = buildBase({ ...SHAPE, layers: arch === 'gemma3' ? 3 : 2, arch: ARCHS[arch]?.(SHAPE.ctx) }, type, false);
      const tokensPtr = rg.rg_alloc(4 * tokens.length) >>> 0;
      u32(tokensPtr, tokens.length).set(tokens);
      const run = (pos: number, n: number) => {
        expect(rg.rg_forward(model, tokensPtr + 4 * pos, n, pos, 0)).toBe(0);
        return {
          logits: f32(rg.rg_logits(model) >>> 0, n * SHAPE.vocab).slice(),
          hidden: f32(rg.rg_hidden(model) >>> 0, n * SHAPE.dim).slice(),
        };
      };
      const singles = tokens.map((_, pos) => run(pos, 1));
      // Chunkings that between them use every kernel width 1..4.
      for (const sizes of [[2, 2, 4], [1, 3, 4], [4, 3, 1]]) {
        let pos = 0;
        for (const n of sizes) {
          const { logits, hidden } = run(pos, n);
          for (let i = 0; i < n; i++) {
            const single = singles[pos + i];
            expect(bitsOf(logits.subarray(i * SHAPE.vocab, (i + 1) * SHAPE.vocab))).toEqual(bitsOf(single.logits));
            expect(bitsOf(hidden.subarray(i * SHAPE.dim, (i + 1) * SHAPE.dim))).toEqual(bitsOf(single.hidden));
          }
          pos += n;
        }
      }
      rg.rg_free(tokensPtr, 4 * tokens.length);
      rg.rg_model_free(model);
    });
  }

  it('an f16 cache kept widened in f32 gives the f16 cache logits bit for bit', () => {
    const logitsWith = (kvWide: boolean) => {
      seed = 0x1234567; // the same weights for both models
      const { model } = buildBase({ ...SHAPE, kvWide }, Q8_0, false);
      const tokensPtr = rg.rg_alloc(4 * tokens.length) >>> 0;
      u32(tokensPtr, tokens.length).set(tokens);
      const rows = [3, 1, 4].flatMap((n, i, sizes) => {
        const pos = sizes.slice(0, i).reduce((a, b) => a + b, 0);
        expect(rg.rg_forward(model, tokensPtr + 4 * pos, n, pos, 0)).toBe(0);
        return bitsOf(f32(rg.rg_logits(model) >>> 0, n * SHAPE.vocab));
      });
      rg.rg_free(tokensPtr, 4 * tokens.length);
      rg.rg_model_free(model);
      return rows;
    };
    expect(logitsWith(true)).toEqual(logitsWith(false));
  });
});
