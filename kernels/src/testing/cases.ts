/// <reference types="@webgpu/types" />
import { GGMLType, typeName, type WeightType } from '../ggml.js';
import { roundToHalf, floatToHalf } from '../half.js';
import { dequantize, quantize } from '../quant.js';
import { addRef, attentionRef, matmulRef, rmsnormRef, ropeRef, swigluRef, topKRef } from '../reference.js';
import { attention } from '../wgsl/attention.js';
import { elementwise } from '../wgsl/elementwise.js';
import { embedding } from '../wgsl/embedding.js';
import { matmul } from '../wgsl/matmul.js';
import { rmsnorm } from '../wgsl/rmsnorm.js';
import { rope, ropeTable } from '../wgsl/rope.js';
import { topK } from '../wgsl/select.js';
import { modelCases } from './model-cases.js';
import { rng, uniform } from './random.js';
import { KernelRunner } from './runner.js';

/** One comparison: `error` must stay within `limit` (numbers), or `got` must equal `want` (ids, error codes). */
export type Check = { what: string; error: number; limit: number } | { what: string; got: unknown; want: unknown };

/** Kernel results may differ from the f64-summed reference by this much, relative to the sum of |terms|. */
export const KERNEL_TOLERANCE = 1e-5;

export function closeness(what: string, got: ArrayLike<number>, want: ArrayLike<number>, scale: number, tolerance = KERNEL_TOLERANCE): Check {
  let error = got.length === want.length ? 0 : Infinity;
  for (let i = 0; i < want.length; i++) error = Math.max(error, Math.abs(got[i]! - want[i]!) || (got[i] === want[i] ? 0 : Infinity));
  return { what, error, limit: tolerance * Math.max(1, scale) };
}

const maxAbs = (a: ArrayLike<number>): number => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** Bound of a dot product's rounding: max over outputs of Σ|w||x|. */
function dotScale(w: Float32Array, rows: number, cols: number, x: Float32Array, n: number): number {
  return maxAbs(matmulRef(w.map(Math.abs), rows, cols, x.map(Math.abs), n));
}

const weightTypes: WeightType[] = [GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.F16, GGMLType.F32];

/** Matmul of each type: odd row counts, Q8_0 rows that start 2 bytes off a word, batches 1/3/8, a split weight, logits_from. */
async function matmulCase(r: KernelRunner): Promise<Check[]> {
  const checks: Check[] = [];
  const random = rng(1);
  for (const type of weightTypes) {
    const blocked = type === GGMLType.Q8_0 || type === GGMLType.Q4_0;
    const rows = 37;
    const cols = blocked ? 96 : 45;
    const values = uniform(random, rows * cols);
    const bytes = quantize(type, values, cols);
    const w = dequantize(type, bytes, rows, cols);
    const rowBytes = bytes.length / rows;
    // Two chunks as tensors.ts splits big tensors: rows 0..20 and 20..37.
    const chunks = [{ row0: 0, rows: 20 }, { row0: 20, rows: 17 }].map((c) => ({ ...c, buffer: r.buffer(bytes.subarray(c.row0 * rowBytes, (c.row0 + c.rows) * rowBytes)) }));
    for (const [n, logitsFrom] of [[1, 0], [3, 0], [8, 0], [5, 2]] as const) {
      const x = uniform(random, n * cols);
      const y = r.buffer((n - logitsFrom) * rows);
      const xBuffer = r.buffer(x);
      r.run(chunks.map((c) => matmul(r.kernels, { step: r.step, weight: c.buffer, type, rows: c.rows, cols, x: xBuffer, y, outRow0: c.row0, outStride: rows, fromLogits: logitsFrom > 0 })), { n, pos: 0, logitsFrom });
      const xs = x.subarray(logitsFrom * cols);
      const want = matmulRef(w, rows, cols, xs, n - logitsFrom);
      checks.push(closeness(`matmul ${typeName(type)} n=${n} from=${logitsFrom}`, await r.floats(y, want.length), want, dotScale(w, rows, cols, xs, n - logitsFrom)));
    }
  }
  return checks;
}

async function embeddingCase(r: KernelRunner): Promise<Check[]> {
  const checks: Check[] = [];
  const random = rng(2);
  for (const type of weightTypes) {
    const rows = 11;
    const cols = 64;
    const bytes = quantize(type, uniform(random, rows * cols), cols);
    const table = dequantize(type, bytes, rows, cols);
    const rowBytes = bytes.length / rows;
    const tokens = [10, 0, 5, 6, 3];
    const tokenBuffer = r.buffer(Uint32Array.from(tokens));
    const x = r.buffer(tokens.length * cols);
    const chunks = [{ row0: 0, rows: 6 }, { row0: 6, rows: 5 }];
    r.run(chunks.map((c) => embedding(r.kernels, { step: r.step, weight: r.buffer(bytes.subarray(c.row0 * rowBytes, (c.row0 + c.rows) * rowBytes)), type, rows: c.rows, cols, row0: c.row0, tokens: tokenBuffer, x })), { n: tokens.length, pos: 0, logitsFrom: 0 });
    const want = tokens.flatMap((t) => Array.from(table.subarray(t * cols, (t + 1) * cols)));
    checks.push(closeness(`embedding ${typeName(type)}`, await r.floats(x, want.length), want, 0, 0));
  }
  return checks;
}

async function rmsnormCase(r: KernelRunner): Promise<Check[]> {
  const checks: Check[] = [];
  const random = rng(3);
  for (const dim of [45, 130]) {
    const n = 3;
    const x = uniform(random, n * dim, 3);
    const w = uniform(random, dim);
    const out = r.buffer(n * dim);
    r.run([rmsnorm(r.kernels, { step: r.step, x: r.buffer(x), weight: r.buffer(w), out, dim, eps: 1e-5 })], { n, pos: 0, logitsFrom: 0 });
    const want = rmsnormRef(x, w, n, dim, 1e-5);
    checks.push(closeness(`rmsnorm dim=${dim}`, await r.floats(out, n * dim), want, maxAbs(want)));
  }
  return checks;
}

async function ropeCase(r: KernelRunner): Promise<Check[]> {
  const checks: Check[] = [];
  const random = rng(4);
  for (const [pos, ropeDim] of [[5, 6], [1000, 10]] as const) {
    const n = 3, heads = 3, headDim = 10;
    const x = uniform(random, n * heads * headDim);
    const buffer = r.buffer(x);
    const table = r.buffer(ropeTable(pos + n, ropeDim, 10000));
    r.run([rope(r.kernels, { step: r.step, x: buffer, table, heads, headDim, ropeDim })], { n, pos, logitsFrom: 0 });
    const want = ropeRef(x, n, heads, headDim, ropeDim, 10000, pos);
    checks.push(closeness(`rope pos=${pos} rope_dim=${ropeDim}`, await r.floats(buffer, x.length), want, 1));
  }
  return checks;
}

/** The four attention kernels over a pre-filled cache: GQA 6/2 heads, 75 positions (two score workgroups), 3 new tokens. */
async function attentionCase(r: KernelRunner): Promise<Check[]> {
  const checks: Check[] = [];
  const random = rng(5);
  const heads = 6, kvHeads = 2, headDim = 10, ctx = 80, pos = 72, n = 3;
  const kvDim = kvHeads * headDim;
  for (const kvF16 of [false, true]) {
    const stored = (v: Float32Array): Float32Array => (kvF16 ? v.map(roundToHalf) : v);
    const kCache = stored(uniform(random, ctx * kvDim));
    const vCache = stored(uniform(random, ctx * kvDim));
    const q = uniform(random, n * heads * headDim, 2);
    const k = uniform(random, n * kvDim);
    const v = uniform(random, n * kvDim);
    const cacheBuffer = (c: Float32Array): GPUBuffer => r.buffer(kvF16 ? Uint16Array.from(c, floatToHalf) : c);
    const out = r.buffer(n * heads * headDim);
    r.run(attention(r.kernels, {
      step: r.step, q: r.buffer(q), k: r.buffer(k), v: r.buffer(v), kCache: cacheBuffer(kCache), vCache: cacheBuffer(vCache),
      scores: r.buffer(8 * heads * ctx), out, heads, kvHeads, headDim, ctx, kvF16,
    }), { n, pos, logitsFrom: 0 });
    kCache.set(stored(k), pos * kvDim);
    vCache.set(stored(v), pos * kvDim);
    const want = attentionRef(q, kCache, vCache, n, pos, { heads, kvHeads, headDim });
    checks.push(closeness(`attention kv=${kvF16 ? 'f16' : 'f32'}`, await r.floats(out, want.length), want, maxAbs(want) * 10));
  }
  return checks;
}

async function elementwiseCase(r: KernelRunner): Promise<Check[]> {
  const random = rng(6);
  const n = 3, width = 70;
  const a = uniform(random, n * width, 6);
  const b = uniform(random, n * width, 2);
  const checks: Check[] = [];
  for (const [op, ref] of [['add', addRef], ['swiglu', swigluRef]] as const) {
    const buffer = r.buffer(a);
    r.run([elementwise(r.kernels, op, { step: r.step, a: buffer, b: r.buffer(b), width })], { n, pos: 0, logitsFrom: 0 });
    const want = ref(a, b);
    checks.push(closeness(op, await r.floats(buffer, want.length), want, maxAbs(want)));
  }
  return checks;
}

/** Argmax and top-k over 3 rows (logits_from = 1 of n = 4), with ties that must resolve to the lower id. */
async function selectCase(r: KernelRunner): Promise<Check[]> {
  const random = rng(7);
  const vocab = 1000, rows = 3;
  const logits = uniform(random, rows * vocab, 4);
  logits[17] = logits[900] = 9; // a tie for first place in row 0
  logits[vocab + 500] = logits[vocab + 3] = logits[vocab + 999] = 7; // ties among the best in row 1
  const checks: Check[] = [];
  for (const k of [1, 7]) {
    const ids = r.buffer(rows * k);
    r.run([topK(r.kernels, { step: r.step, logits: r.buffer(logits), ids, values: r.buffer(rows * k), vocab, k })], { n: 4, pos: 0, logitsFrom: 1 });
    const want = Array.from({ length: rows }, (_, row) => topKRef(logits.subarray(row * vocab, (row + 1) * vocab), k)).flat();
    checks.push({ what: `top-k k=${k}`, got: Array.from(new Uint32Array(await r.read(ids, rows * k))), want });
  }
  return checks;
}

const kernelCases = {
  matmul: matmulCase,
  embedding: embeddingCase,
  rmsnorm: rmsnormCase,
  rope: ropeCase,
  attention: attentionCase,
  elementwise: elementwiseCase,
  select: selectCase,
};

export const cases: Record<string, (device: GPUDevice) => Promise<Check[]>> = {
  ...Object.fromEntries(Object.entries(kernelCases).map(([name, run]) => [name, (device: GPUDevice) => run(new KernelRunner(device))])),
  ...modelCases,
};
