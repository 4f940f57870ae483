import { expectedShape, TensorKind, type ModelConfig } from './config.js';
import { roundToHalf } from './half.js';

/**
 * Plain JS f32 llama forward, the yardstick for the WGSL kernels: f32 values in, f32 results out, sums in f64.
 * Each function mirrors one kernel; ReferenceModel chains them like forward.ts does.
 */

/** y[t, r] = W[r, :] · x[t, :] for n activation rows. */
export function matmulRef(w: Float32Array, rows: number, cols: number, x: Float32Array, n: number): Float32Array {
  const y = new Float32Array(n * rows);
  for (let t = 0; t < n; t++) {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[r * cols + c]! * x[t * cols + c]!;
      y[t * rows + r] = s;
    }
  }
  return y;
}

export function rmsnormRef(x: Float32Array, w: Float32Array, n: number, dim: number, eps: number): Float32Array {
  const out = new Float32Array(n * dim);
  for (let t = 0; t < n; t++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[t * dim + i]! ** 2;
    const scale = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[t * dim + i] = x[t * dim + i]! * scale * w[i]!;
  }
  return out;
}

/** RoPE normal mode on [n × heads × headDim] rows for positions pos..pos+n-1; returns a rotated copy. */
export function ropeRef(x: Float32Array, n: number, heads: number, headDim: number, ropeDim: number, base: number, pos: number): Float32Array {
  const out = Float32Array.from(x);
  for (let t = 0; t < n; t++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < ropeDim / 2; i++) {
        const theta = (pos + t) * base ** ((-2 * i) / ropeDim);
        const o = (t * heads + h) * headDim + 2 * i;
        const a = x[o]!;
        const b = x[o + 1]!;
        out[o] = a * Math.cos(theta) - b * Math.sin(theta);
        out[o + 1] = a * Math.sin(theta) + b * Math.cos(theta);
      }
    }
  }
  return out;
}

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
}

/** Causal GQA attention of n queries at pos..pos+n-1 over caches [≥ pos+n × kvHeads × headDim]. */
export function attentionRef(q: Float32Array, kCache: Float32Array, vCache: Float32Array, n: number, pos: number, s: AttentionShape): Float32Array {
  const kvDim = s.kvHeads * s.headDim;
  const out = new Float32Array(n * s.heads * s.headDim);
  for (let t = 0; t < n; t++) {
    for (let h = 0; h < s.heads; h++) {
      const kvh = Math.floor(h / (s.heads / s.kvHeads));
      const len = pos + t + 1;
      const scores = new Float64Array(len);
      for (let p = 0; p < len; p++) {
        let dot = 0;
        for (let d = 0; d < s.headDim; d++) dot += q[(t * s.heads + h) * s.headDim + d]! * kCache[p * kvDim + kvh * s.headDim + d]!;
        scores[p] = dot / Math.sqrt(s.headDim);
      }
      const probs = softmaxRef(scores);
      for (let d = 0; d < s.headDim; d++) {
        let acc = 0;
        for (let p = 0; p < len; p++) acc += probs[p]! * vCache[p * kvDim + kvh * s.headDim + d]!;
        out[(t * s.heads + h) * s.headDim + d] = acc;
      }
    }
  }
  return out;
}

export function softmaxRef(x: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]!);
  const e = Float64Array.from(x, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

export function swigluRef(gate: Float32Array, up: Float32Array): Float32Array {
  return gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
}

export function addRef(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((v, i) => v + b[i]!);
}

/** The k best ids of a row: larger value first, ties by lower id. */
export function topKRef(row: ArrayLike<number>, k: number): number[] {
  const ids = Array.from({ length: row.length }, (_, i) => i);
  ids.sort((a, b) => row[b]! - row[a]! || a - b);
  return ids.slice(0, k);
}

/** Dequantized weights by kind and layer (see weightKey). */
export type ReferenceWeights = Map<string, Float32Array>;
export const weightKey = (kind: number, layer = 0): string => `${kind}:${layer}`;

/** The forward of forward.ts in plain JS, with its own KV cache (rounded to f16 when kvType is 'f16'). */
export class ReferenceModel {
  private readonly kCache: Float32Array[];
  private readonly vCache: Float32Array[];

  constructor(private readonly config: ModelConfig, private readonly weights: ReferenceWeights) {
    const kvDim = config.kvHeads * config.headDim;
    this.kCache = Array.from({ length: config.layers }, () => new Float32Array(config.contextLength * kvDim));
    this.vCache = Array.from({ length: config.layers }, () => new Float32Array(config.contextLength * kvDim));
  }

  /** Logits [n × n_vocab] and hidden states [n × dim] of tokens at pos..pos+n-1. */
  forward(tokens: number[], pos: number): { logits: Float32Array; hidden: Float32Array } {
    const c = this.config;
    const n = tokens.length;
    const kvDim = c.kvHeads * c.headDim;
    const w = (kind: number, layer = 0): Float32Array => this.weights.get(weightKey(kind, layer))!;
    const mul = (kind: number, layer: number, x: Float32Array): Float32Array => {
      const [rows, cols] = expectedShape(c, kind)!;
      return matmulRef(w(kind, layer), rows, cols, x, n);
    };
    const embd = w(TensorKind.tokenEmbd);
    let x: Float32Array = new Float32Array(n * c.dim);
    tokens.forEach((token, t) => x.set(embd.subarray(token * c.dim, (token + 1) * c.dim), t * c.dim));
    const store = c.kvType === 'f16' ? roundToHalf : (v: number) => v;
    for (let l = 0; l < c.layers; l++) {
      let xb = rmsnormRef(x, w(TensorKind.attnNorm, l), n, c.dim, c.rmsEps);
      const q = ropeRef(mul(TensorKind.attnQ, l, xb), n, c.heads, c.headDim, c.ropeDim, c.ropeFreqBase, pos);
      const k = ropeRef(mul(TensorKind.attnK, l, xb), n, c.kvHeads, c.headDim, c.ropeDim, c.ropeFreqBase, pos);
      const v = mul(TensorKind.attnV, l, xb);
      this.kCache[l]!.set(k.map(store), pos * kvDim);
      this.vCache[l]!.set(v.map(store), pos * kvDim);
      const att = attentionRef(q, this.kCache[l]!, this.vCache[l]!, n, pos, { heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim });
      x = addRef(x, mul(TensorKind.attnOutput, l, att));
      xb = rmsnormRef(x, w(TensorKind.ffnNorm, l), n, c.dim, c.rmsEps);
      const hb = swigluRef(mul(TensorKind.ffnGate, l, xb), mul(TensorKind.ffnUp, l, xb));
      x = addRef(x, mul(TensorKind.ffnDown, l, hb));
    }
    const hidden = rmsnormRef(x, w(TensorKind.outputNorm), n, c.dim, c.rmsEps);
    const output = this.weights.get(weightKey(TensorKind.output)) ?? embd;
    return { logits: matmulRef(output, c.vocabSize, c.dim, hidden, n), hidden };
  }
}
