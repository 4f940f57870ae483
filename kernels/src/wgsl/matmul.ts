import { MAX_BATCH } from '../config.js';
import { typeName, type WeightType } from '../ggml.js';
import { grid, type Dispatch, type KernelCache } from '../gpu.js';
import { flatIndex, stepUniform } from './common.js';
import { rowDot } from './weights.js';

/**
 * y[t, out_row0 + r] = W[r, :] · x[t0 + t, :] for the batch's tokens t (t0 = 0, or logits_from for the output matrix).
 * One workgroup per weight row: each thread sums a strided share of the row for every token (≤ 8), then a tree
 * reduction. The order of additions does not depend on the batch size, so a batched forward equals single-token ones.
 */
function matmulShader(type: WeightType): string {
  return /* wgsl */ `
${stepUniform}
struct Shape { rows: u32, cols: u32, out_row0: u32, out_stride: u32, from_logits: u32 }
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
const MAX_BATCH: u32 = ${MAX_BATCH}u;
var<workgroup> partial: array<f32, ${MAX_BATCH * 64}>;
${flatIndex}
${rowDot(type)}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = flat_workgroup(wid, nwg);
  if (row >= shape.rows) { return; }
  let t0 = select(0u, step.logits_from, shape.from_logits == 1u);
  let nt = min(step.n - t0, MAX_BATCH);
  var acc: array<f32, 8>;
  accumulate(row, lid, t0, nt, &acc);
  for (var t = 0u; t < nt; t++) { partial[t * WG + lid] = acc[t]; }
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      for (var t = 0u; t < nt; t++) { partial[t * WG + lid] += partial[t * WG + lid + stride]; }
    }
    workgroupBarrier();
  }
  if (lid < nt) { y[lid * shape.out_stride + shape.out_row0 + row] = partial[lid * WG]; }
}
`;
}

export interface MatmulArgs {
  step: GPUBuffer;
  /** The GGUF bytes of `rows` rows (one chunk of a split tensor), padded by a word (see tensors.ts). */
  weight: GPUBuffer;
  type: WeightType;
  rows: number;
  cols: number;
  x: GPUBuffer;
  y: GPUBuffer;
  /** Where this chunk's rows start in each output row of `y`, and that row's length. */
  outRow0: number;
  outStride: number;
  /** Multiply only activation rows logits_from..n (the output matrix). */
  fromLogits: boolean;
}

export function matmul(kernels: KernelCache, a: MatmulArgs): Dispatch {
  const shape = kernels.shape([a.rows, a.cols, a.outRow0, a.outStride, a.fromLogits ? 1 : 0]);
  return kernels.dispatch(`matmul_${typeName(a.type)}`, () => matmulShader(a.type), [a.step, shape, a.weight, a.x, a.y], () => grid(a.rows));
}
