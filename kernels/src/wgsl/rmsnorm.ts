import { f32Bits, type Dispatch, type KernelCache } from '../gpu.js';
import { stepUniform } from './common.js';

/** out[t, :] = x[t, :] / sqrt(mean(x[t, :]²) + eps) * w; one workgroup per token. */
const rmsnormShader = /* wgsl */ `
${stepUniform}
struct Shape { dim: u32, eps_bits: u32 }
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
var<workgroup> partial: array<f32, WG>;
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.x;
  if (t >= step.n) { return; }
  let base = t * shape.dim;
  var sum = 0.0;
  for (var i = lid; i < shape.dim; i += WG) { sum += x[base + i] * x[base + i]; }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  let scale = 1.0 / sqrt(partial[0] / f32(shape.dim) + bitcast<f32>(shape.eps_bits));
  for (var i = lid; i < shape.dim; i += WG) { out[base + i] = x[base + i] * scale * w[i]; }
}
`;

export interface RmsNormArgs {
  step: GPUBuffer;
  x: GPUBuffer;
  /** F32 norm weights (dim values). */
  weight: GPUBuffer;
  out: GPUBuffer;
  dim: number;
  eps: number;
}

export function rmsnorm(kernels: KernelCache, a: RmsNormArgs): Dispatch {
  const shape = kernels.shape([a.dim, f32Bits(a.eps)]);
  return kernels.dispatch('rmsnorm', () => rmsnormShader, [a.step, shape, a.x, a.weight, a.out], (s) => [s.n, 1, 1]);
}
