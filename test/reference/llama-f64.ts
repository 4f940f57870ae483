/**
 * A plain, obviously-correct llama forward in f64, for checking faster engines. Weights are the GGUF's
 * dequantized values; everything after that is double precision, one token at a time, with a KV cache.
 * Numerics as in docs/ARCHITECTURE.md: RMSNorm, RoPE "normal" mode (adjacent pairs), GQA attention
 * scaled by 1/sqrt(head_dim), SwiGLU, output tied to token_embd when output.weight is absent.
 */
import { readGGUF, type ReadGGUF } from './gguf-reader.js';
import { argmax } from './compare.js';
import { decodeF16, dequantizeQ8_0, encodeF16, GGML_TYPE, quantizeQ8_0 } from '../fixtures/quantize.js';

export interface LlamaConfig {
  nVocab: number;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  ropeDim: number;
  ropeBase: number;
  rmsEps: number;
}

/** A weight matrix of `rows` rows of `cols` values (GGUF dims [cols, rows]). */
interface Matrix {
  rows: number;
  cols: number;
  w: Float32Array;
  /** What happens to the input vector before the dot products (identity unless emulating llama.cpp). */
  prepare: (x: Float64Array) => Float64Array;
}

export interface ReferenceOptions {
  /**
   * Round each matmul's input as llama.cpp's CPU backend does: to Q8_0 blocks before a Q8_0/Q4_0 matrix,
   * to f16 before an F16 one. Off (default): exact f64 math on the dequantized weights.
   */
  emulateActivationRounding?: boolean;
  /**
   * Emulate llama.cpp's default f16 KV cache (without flash attention): K and V stored as f16, the query
   * rounded to f16 for Q·K, and the softmax probabilities rounded to f16 for the product with V.
   */
  emulateF16KvCache?: boolean;
}

const identity = (x: Float64Array) => x;
const viaQ8_0 = (x: Float64Array) => Float64Array.from(dequantizeQ8_0(quantizeQ8_0(Float32Array.from(x)), x.length));
const viaF16 = (x: Float64Array) => Float64Array.from(decodeF16(encodeF16(Float32Array.from(x)), x.length));

function activationRounding(type: number): (x: Float64Array) => Float64Array {
  if (type === GGML_TYPE.Q8_0 || type === GGML_TYPE.Q4_0) return viaQ8_0;
  if (type === GGML_TYPE.F16) return viaF16;
  return identity;
}

interface Layer {
  attnNorm: Float32Array;
  q: Matrix;
  k: Matrix;
  v: Matrix;
  o: Matrix;
  ffnNorm: Float32Array;
  gate: Matrix;
  up: Matrix;
  down: Matrix;
}

export interface ReferenceLlama {
  config: LlamaConfig;
  /** Logits after each position of `ids`, starting from an empty cache. */
  forward(ids: readonly number[]): Float64Array[];
  /** Greedy continuation of `promptIds` by `n` tokens (EOS is just another token). */
  greedy(promptIds: readonly number[], n: number): number[];
}

function num(file: ReadGGUF, key: string, fallback?: number): number {
  const v = file.get(key) ?? fallback;
  if (v === undefined) throw new Error(`GGUF has no ${key}`);
  return Number(v);
}

export function configFromGGUF(file: ReadGGUF): LlamaConfig {
  const arch = file.get('general.architecture');
  if (arch !== 'llama') throw new Error(`reference runs llama models only, got ${String(arch)}`);
  const dim = num(file, 'llama.embedding_length');
  const heads = num(file, 'llama.attention.head_count');
  const headDim = dim / heads;
  return {
    nVocab: file.tensor('token_embd.weight')!.dims[1]!,
    dim,
    layers: num(file, 'llama.block_count'),
    heads,
    kvHeads: num(file, 'llama.attention.head_count_kv', heads),
    headDim,
    ffn: num(file, 'llama.feed_forward_length'),
    ropeDim: num(file, 'llama.rope.dimension_count', headDim),
    ropeBase: num(file, 'llama.rope.freq_base', 10000),
    rmsEps: num(file, 'llama.attention.layer_norm_rms_epsilon', 1e-5),
  };
}

export function loadReferenceLlama(source: Uint8Array | ReadGGUF, options: ReferenceOptions = {}): ReferenceLlama {
  const file = source instanceof Uint8Array ? readGGUF(source) : source;
  const cfg = configFromGGUF(file);
  const matrix = (name: string): Matrix => {
    const t = file.tensor(name);
    if (!t) throw new Error(`GGUF has no ${name}`);
    const prepare = options.emulateActivationRounding ? activationRounding(t.type) : identity;
    return { cols: t.dims[0]!, rows: t.dims[1] ?? 1, w: file.tensorF32(name), prepare };
  };
  const vector = (name: string) => file.tensorF32(name);
  const embedding = matrix('token_embd.weight');
  const output = file.tensor('output.weight') ? matrix('output.weight') : embedding;
  const outputNorm = vector('output_norm.weight');
  const layers: Layer[] = Array.from({ length: cfg.layers }, (_, l) => ({
    attnNorm: vector(`blk.${l}.attn_norm.weight`),
    q: matrix(`blk.${l}.attn_q.weight`),
    k: matrix(`blk.${l}.attn_k.weight`),
    v: matrix(`blk.${l}.attn_v.weight`),
    o: matrix(`blk.${l}.attn_output.weight`),
    ffnNorm: vector(`blk.${l}.ffn_norm.weight`),
    gate: matrix(`blk.${l}.ffn_gate.weight`),
    up: matrix(`blk.${l}.ffn_up.weight`),
    down: matrix(`blk.${l}.ffn_down.weight`),
  }));

  const kvRound = options.emulateF16KvCache ? viaF16 : identity;
  const attentionConfig = { ...cfg, round: kvRound };

  /** A fresh decoding state: per layer, the K and V rows of every position so far. */
  const session = () => {
    const keys: Float64Array[][] = layers.map(() => []);
    const values: Float64Array[][] = layers.map(() => []);
    return (token: number): Float64Array => {
      if (!Number.isInteger(token) || token < 0 || token >= cfg.nVocab) throw new Error(`token ${token} is outside the vocabulary`);
      const pos = keys[0]?.length ?? 0;
      const x = Float64Array.from(embedding.w.subarray(token * cfg.dim, (token + 1) * cfg.dim));
      layers.forEach((layer, l) => {
        const h = rmsNorm(x, layer.attnNorm, cfg.rmsEps);
        const q = matVec(layer.q, h);
        const k = matVec(layer.k, h);
        rope(q, cfg.heads, pos, cfg);
        rope(k, cfg.kvHeads, pos, cfg);
        keys[l]!.push(kvRound(k));
        values[l]!.push(kvRound(matVec(layer.v, h)));
        addInPlace(x, matVec(layer.o, attention(kvRound(q), keys[l]!, values[l]!, attentionConfig)));
        const f = rmsNorm(x, layer.ffnNorm, cfg.rmsEps);
        const gate = matVec(layer.gate, f);
        const up = matVec(layer.up, f);
        addInPlace(x, matVec(layer.down, gate.map((g, i) => silu(g) * up[i]!)));
      });
      return matVec(output, rmsNorm(x, outputNorm, cfg.rmsEps));
    };
  };

  return {
    config: cfg,
    forward(ids) {
      const step = session();
      return ids.map((id) => step(id));
    },
    greedy(promptIds, n) {
      const step = session();
      let logits: Float64Array | undefined;
      for (const id of promptIds) logits = step(id);
      if (!logits) throw new Error('greedy needs at least one prompt token');
      const out: number[] = [];
      while (out.length < n) {
        const next = argmax(logits);
        out.push(next);
        if (out.length < n) logits = step(next);
      }
      return out;
    },
  };
}

function matVec(m: Matrix, input: Float64Array): Float64Array {
  if (input.length !== m.cols) throw new Error(`matrix has ${m.cols} columns, vector has ${input.length} values`);
  const x = m.prepare(input);
  const out = new Float64Array(m.rows);
  for (let r = 0; r < m.rows; r++) {
    let sum = 0;
    const row = r * m.cols;
    for (let c = 0; c < m.cols; c++) sum += m.w[row + c]! * x[c]!;
    out[r] = sum;
  }
  return out;
}

function rmsNorm(x: Float64Array, weight: Float32Array, eps: number): Float64Array {
  let sumSq = 0;
  for (const v of x) sumSq += v * v;
  const scale = 1 / Math.sqrt(sumSq / x.length + eps);
  return x.map((v, i) => v * scale * weight[i]!);
}

/** Rotates adjacent pairs (2i, 2i+1) of each head's first ropeDim values by pos · base^(-2i/ropeDim). */
function rope(v: Float64Array, nHeads: number, pos: number, cfg: LlamaConfig): void {
  for (let h = 0; h < nHeads; h++) {
    const base = h * cfg.headDim;
    for (let i = 0; i < cfg.ropeDim / 2; i++) {
      const theta = pos * cfg.ropeBase ** ((-2 * i) / cfg.ropeDim);
      const cos = Math.cos(theta);
      const sin = Math.sin(theta);
      const a = v[base + 2 * i]!;
      const b = v[base + 2 * i + 1]!;
      v[base + 2 * i] = a * cos - b * sin;
      v[base + 2 * i + 1] = a * sin + b * cos;
    }
  }
}

/** Causal attention of one query over all cached positions; query head h reads kv head h / (heads / kvHeads). */
function attention(q: Float64Array, keys: Float64Array[], values: Float64Array[], cfg: LlamaConfig & { round: (x: Float64Array) => Float64Array }): Float64Array {
  const out = new Float64Array(cfg.heads * cfg.headDim);
  const group = cfg.heads / cfg.kvHeads;
  const scale = 1 / Math.sqrt(cfg.headDim);
  for (let h = 0; h < cfg.heads; h++) {
    const qo = h * cfg.headDim;
    const kvo = Math.floor(h / group) * cfg.headDim;
    const scores = keys.map((k) => {
      let dot = 0;
      for (let d = 0; d < cfg.headDim; d++) dot += q[qo + d]! * k[kvo + d]!;
      return dot * scale;
    });
    const max = Math.max(...scores);
    const weights = scores.map((s) => Math.exp(s - max));
    const total = weights.reduce((a, b) => a + b, 0);
    const probabilities = cfg.round(Float64Array.from(weights, (w) => w / total));
    values.forEach((v, t) => {
      const p = probabilities[t]!;
      for (let d = 0; d < cfg.headDim; d++) out[qo + d] = out[qo + d]! + p * v[kvo + d]!;
    });
  }
  return out;
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

function addInPlace(x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < x.length; i++) x[i] = x[i]! + y[i]!;
}
