import { itemGrid, type Dispatch, type KernelCache } from '../gpu.js';
import { flatIndex, perItemEntry, stepUniform } from './common.js';

/**
 * RoPE "normal" mode in place: pair (2i, 2i+1) of each head of token t turns by θ = (pos + t) · base^(-2i / rope_dim);
 * dims ≥ rope_dim stay. cos θ and sin θ come from a table computed once in f64 (ropeTable): WGSL only promises
 * sin/cos to 2⁻¹¹ absolute, which SwiftShader really shows, too coarse next to f32 activations.
 */
const ropeShader = /* wgsl */ `
${stepUniform}
struct Shape { heads: u32, head_dim: u32, rope_dim: u32 }
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read> table: array<vec2<f32>>;
${flatIndex}
fn item(i: u32) {
  let pairs = shape.rope_dim / 2u;
  if (i >= step.n * shape.heads * pairs) { return; }
  let pair = i % pairs;
  let head_row = i / pairs;
  let t = head_row / shape.heads;
  let cs = table[(step.pos + t) * pairs + pair];
  let o = head_row * shape.head_dim + 2u * pair;
  let a = x[o];
  let b = x[o + 1u];
  x[o] = a * cs.x - b * cs.y;
  x[o + 1u] = a * cs.y + b * cs.x;
}
${perItemEntry}
`;

/** (cos θ, sin θ) for positions 0..positions-1 and pairs 0..ropeDim/2-1, position-major. */
export function ropeTable(positions: number, ropeDim: number, freqBase: number): Float32Array<ArrayBuffer> {
  const pairs = ropeDim / 2;
  const table = new Float32Array(positions * pairs * 2);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < pairs; i++) {
      const theta = p * freqBase ** ((-2 * i) / ropeDim);
      table[2 * (p * pairs + i)] = Math.cos(theta);
      table[2 * (p * pairs + i) + 1] = Math.sin(theta);
    }
  }
  return table;
}

export interface RopeArgs {
  step: GPUBuffer;
  /** [n × heads × head_dim] rows, rotated in place. */
  x: GPUBuffer;
  /** ropeTable() covering every position the forward reaches. */
  table: GPUBuffer;
  heads: number;
  headDim: number;
  ropeDim: number;
}

export function rope(kernels: KernelCache, a: RopeArgs): Dispatch {
  const shape = kernels.shape([a.heads, a.headDim, a.ropeDim]);
  return kernels.dispatch('rope', () => ropeShader, [a.step, shape, a.x, a.table], (s) => itemGrid((s.n * a.heads * a.ropeDim) / 2));
}
