import { f32Bits, itemGrid, type Dispatch, type KernelCache } from '../gpu.js';
import { WORKGROUP_SIZE, flatIndex, perItemEntry, stepUniform } from './common.js';

/**
 * Causal GQA attention over a per-layer KV cache, in four kernels: store the batch's K/V rows at pos.., scores,
 * a causal softmax, and the weighted sum of V. Token t of the batch sees cache positions 0..pos+t.
 * The cache holds f32 values, or f16 pairs packed in u32 words (WebGPU's shader-f16 is optional, pack2x16float is not).
 */

const cacheWord = (f16: boolean): string => (f16 ? 'u32' : 'f32');

/** `k_at(i)` / `v_at(i)`: element i of the K or V cache as f32. */
function cacheReader(name: 'k' | 'v', f16: boolean): string {
  const load = f16 ? `unpack2x16float(${name}c[i >> 1u])[i & 1u]` : `${name}c[i]`;
  return `fn ${name}_at(i: u32) -> f32 { return ${load}; }`;
}

const attentionShape = /* wgsl */ `
struct Shape { heads: u32, kv_heads: u32, head_dim: u32, ctx: u32, scale_bits: u32 }
@group(0) @binding(1) var<uniform> shape: Shape;
fn kv_dim() -> u32 { return shape.kv_heads * shape.head_dim; }
fn kv_head(h: u32) -> u32 { return h / (shape.heads / shape.kv_heads); }
// Scores of (token t, head h) occupy one ctx-long row.
fn score_row(t: u32, h: u32) -> u32 { return (t * shape.heads + h) * shape.ctx; }
`;

function storeShader(f16: boolean): string {
  const store = f16
    ? 'kc[o / 2u] = pack2x16float(vec2(k[s], k[s + 1u])); vc[o / 2u] = pack2x16float(vec2(v[s], v[s + 1u]));'
    : 'kc[o] = k[s]; kc[o + 1u] = k[s + 1u]; vc[o] = v[s]; vc[o + 1u] = v[s + 1u];';
  return /* wgsl */ `
${stepUniform}
${attentionShape}
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> kc: array<${cacheWord(f16)}>;
@group(0) @binding(5) var<storage, read_write> vc: array<${cacheWord(f16)}>;
${flatIndex}
fn item(i: u32) {
  let pairs = kv_dim() / 2u;
  if (i >= step.n * pairs) { return; }
  let t = i / pairs;
  let s = 2u * i;
  let o = (step.pos + t) * kv_dim() + 2u * (i % pairs);
  ${store}
}
${perItemEntry}
`;
}

function scoresShader(f16: boolean): string {
  return /* wgsl */ `
${stepUniform}
${attentionShape}
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> kc: array<${cacheWord(f16)}>;
@group(0) @binding(4) var<storage, read_write> att: array<f32>;
${cacheReader('k', f16)}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let p = wid.x * WG + lid;
  let h = wid.y;
  let t = wid.z;
  if (p > step.pos + t) { return; }
  let qo = (t * shape.heads + h) * shape.head_dim;
  let ko = p * kv_dim() + kv_head(h) * shape.head_dim;
  var s = 0.0;
  for (var d = 0u; d < shape.head_dim; d++) { s += q[qo + d] * k_at(ko + d); }
  att[score_row(t, h) + p] = s * bitcast<f32>(shape.scale_bits);
}
`;
}

const softmaxShader = /* wgsl */ `
${stepUniform}
${attentionShape}
@group(0) @binding(2) var<storage, read_write> att: array<f32>;
var<workgroup> partial: array<f32, WG>;
fn reduce(lid: u32, is_max: bool) -> f32 {
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      let other = partial[lid + stride];
      partial[lid] = select(partial[lid] + other, max(partial[lid], other), is_max);
    }
    workgroupBarrier();
  }
  let result = partial[0];
  workgroupBarrier();
  return result;
}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let t = wid.y;
  let row = score_row(t, h);
  let len = step.pos + t + 1u;
  var m = -3.402823e38;
  for (var p = lid; p < len; p += WG) { m = max(m, att[row + p]); }
  partial[lid] = m;
  m = reduce(lid, true);
  var sum = 0.0;
  for (var p = lid; p < len; p += WG) {
    let e = exp(att[row + p] - m);
    att[row + p] = e;
    sum += e;
  }
  partial[lid] = sum;
  let inv = 1.0 / reduce(lid, false);
  for (var p = lid; p < len; p += WG) { att[row + p] *= inv; }
}
`;

function mixShader(f16: boolean): string {
  return /* wgsl */ `
${stepUniform}
${attentionShape}
@group(0) @binding(2) var<storage, read> att: array<f32>;
@group(0) @binding(3) var<storage, read> vc: array<${cacheWord(f16)}>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
${cacheReader('v', f16)}
${flatIndex}
fn item(i: u32) {
  if (i >= step.n * shape.heads * shape.head_dim) { return; }
  let d = i % shape.head_dim;
  let h = (i / shape.head_dim) % shape.heads;
  let t = i / (shape.head_dim * shape.heads);
  let row = score_row(t, h);
  let vo = kv_head(h) * shape.head_dim + d;
  var s = 0.0;
  for (var p = 0u; p <= step.pos + t; p++) { s += att[row + p] * v_at(p * kv_dim() + vo); }
  out[i] = s;
}
${perItemEntry}
`;
}

export interface AttentionArgs {
  step: GPUBuffer;
  /** [n × heads × head_dim] queries (after RoPE) and [n × kv_heads × head_dim] keys (after RoPE) and values. */
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  /** This layer's caches: [ctx × kv_heads × head_dim] each. */
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  /** Scratch for scores: [max_batch × heads × ctx] f32. */
  scores: GPUBuffer;
  /** [n × heads × head_dim] result. */
  out: GPUBuffer;
  heads: number;
  kvHeads: number;
  headDim: number;
  ctx: number;
  kvF16: boolean;
}

/** The four dispatches of one attention layer, in order. */
export function attention(kernels: KernelCache, a: AttentionArgs): Dispatch[] {
  const shape = kernels.shape([a.heads, a.kvHeads, a.headDim, a.ctx, f32Bits(1 / Math.sqrt(a.headDim))]);
  const kv = a.kvF16 ? 'f16' : 'f32';
  const kvPairs = (a.kvHeads * a.headDim) / 2;
  return [
    kernels.dispatch(`kv_store_${kv}`, () => storeShader(a.kvF16), [a.step, shape, a.k, a.v, a.kCache, a.vCache], (s) => itemGrid(s.n * kvPairs)),
    kernels.dispatch(`attn_scores_${kv}`, () => scoresShader(a.kvF16), [a.step, shape, a.q, a.kCache, a.scores], (s) => [Math.ceil((s.pos + s.n) / WORKGROUP_SIZE), a.heads, s.n]),
    kernels.dispatch('attn_softmax', () => softmaxShader, [a.step, shape, a.scores], (s) => [a.heads, s.n, 1]),
    kernels.dispatch(`attn_mix_${kv}`, () => mixShader(a.kvF16), [a.step, shape, a.scores, a.vCache, a.out], (s) => itemGrid(s.n * a.heads * a.headDim)),
  ];
}

