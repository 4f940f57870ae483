import type { Dispatch, KernelCache } from '../gpu.js';
import { stepUniform } from './common.js';

/**
 * Greedy argmax and top-k over logits rows [rows × vocab], one workgroup per row.
 * Order: larger value first, equal values by lower id (llama.cpp's greedy pick). NaN and -inf are never picked:
 * a row with fewer such values than k ends with id 0xffffffff.
 * Top-k runs k argmax rounds, each over the values ranked after the previous pick: O(k · vocab) per row, no sort buffers.
 */
const selectShader = /* wgsl */ `
${stepUniform}
struct Shape { vocab: u32, k: u32 }
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> values: array<f32>;
var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;
const NONE: u32 = 0xffffffffu;
fn ranks_before(v: f32, i: u32, bv: f32, bi: u32) -> bool { return v > bv || (v == bv && i < bi); }
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  if (row >= step.n - step.logits_from) { return; }
  let base = row * shape.vocab;
  var prev_v = 0.0;
  var prev_i = NONE;
  for (var r = 0u; r < shape.k; r++) {
    var bv = -3.402823e38;
    var bi = NONE;
    for (var i = lid; i < shape.vocab; i += WG) {
      let v = logits[base + i];
      let after_prev = r == 0u || (prev_i != NONE && ranks_before(prev_v, prev_i, v, i));
      if (after_prev && ranks_before(v, i, bv, bi)) { bv = v; bi = i; }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
      if (lid < stride && ranks_before(best_v[lid + stride], best_i[lid + stride], best_v[lid], best_i[lid])) {
        best_v[lid] = best_v[lid + stride];
        best_i[lid] = best_i[lid + stride];
      }
      workgroupBarrier();
    }
    prev_v = best_v[0];
    prev_i = best_i[0];
    if (lid == 0u) {
      ids[row * shape.k + r] = prev_i;
      values[row * shape.k + r] = prev_v;
    }
    workgroupBarrier();
  }
}
`;

export interface SelectArgs {
  step: GPUBuffer;
  logits: GPUBuffer;
  /** [rows × k] u32 token ids and their f32 logits. */
  ids: GPUBuffer;
  values: GPUBuffer;
  vocab: number;
  /** 1 = greedy argmax. */
  k: number;
}

/** Rows are the forward's logits rows: logits_from..n. */
export function topK(kernels: KernelCache, a: SelectArgs): Dispatch {
  const shape = kernels.shape([a.vocab, a.k]);
  return kernels.dispatch('top_k', () => selectShader, [a.step, shape, a.logits, a.ids, a.values], (s) => [s.n - s.logitsFrom, 1, 1]);
}
