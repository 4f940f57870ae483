import { typeName, type WeightType } from '../ggml.js';
import { itemGrid, type Dispatch, type KernelCache } from '../gpu.js';
import { flatIndex, perItemEntry, stepUniform } from './common.js';
import { weightAccess } from './weights.js';

/** x[t, :] = row tokens[t] of the embedding table, for the tokens whose row lies in this chunk of the table. */
function embeddingShader(type: WeightType): string {
  return /* wgsl */ `
${stepUniform}
struct Shape { rows: u32, cols: u32, row0: u32 }
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> tokens: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
${flatIndex}
${weightAccess(type)}
fn item(i: u32) {
  if (i >= step.n * shape.cols) { return; }
  let t = i / shape.cols;
  let token = tokens[t];
  if (token < shape.row0 || token - shape.row0 >= shape.rows) { return; }
  x[i] = weight(token - shape.row0, i % shape.cols);
}
${perItemEntry}
`;
}

export interface EmbeddingArgs {
  step: GPUBuffer;
  weight: GPUBuffer;
  type: WeightType;
  rows: number;
  cols: number;
  /** First token id stored in this chunk. */
  row0: number;
  tokens: GPUBuffer;
  x: GPUBuffer;
}

export function embedding(kernels: KernelCache, a: EmbeddingArgs): Dispatch {
  const shape = kernels.shape([a.rows, a.cols, a.row0]);
  return kernels.dispatch(`embedding_${typeName(a.type)}`, () => embeddingShader(a.type), [a.step, shape, a.weight, a.tokens, a.x], (s) => itemGrid(s.n * a.cols));
}
