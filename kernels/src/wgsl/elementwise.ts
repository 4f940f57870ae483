import { itemGrid, type Dispatch, type KernelCache } from '../gpu.js';
import { flatIndex, perItemEntry, stepUniform } from './common.js';

/** a[i] = op(a[i], b[i]) over the batch's n rows of `width` values. */
function elementwiseShader(op: string): string {
  return /* wgsl */ `
${stepUniform}
struct Shape { width: u32 }
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
${flatIndex}
fn item(i: u32) {
  if (i >= step.n * shape.width) { return; }
  ${op}
}
${perItemEntry}
`;
}

const ops = {
  /** Residual connection: a += b. */
  add: 'a[i] += b[i];',
  /** SwiGLU: a = silu(a) * b with a = gate(x), b = up(x). */
  swiglu: 'let g = a[i]; a[i] = g / (1.0 + exp(-g)) * b[i];',
} as const;

export interface ElementwiseArgs {
  step: GPUBuffer;
  a: GPUBuffer;
  b: GPUBuffer;
  width: number;
}

export function elementwise(kernels: KernelCache, op: keyof typeof ops, a: ElementwiseArgs): Dispatch {
  const shape = kernels.shape([a.width]);
  return kernels.dispatch(op, () => elementwiseShader(ops[op]), [a.step, shape, a.a, a.b], (s) => itemGrid(s.n * a.width));
}
