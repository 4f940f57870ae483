import { expectedShape, TensorKind, type ModelConfig } from '../config.js';
import { GGMLType, type WeightType } from '../ggml.js';
import { dequantize, quantize } from '../quant.js';
import { weightKey, type ReferenceWeights } from '../reference.js';
import { rng, uniform } from './random.js';

export interface TensorBytes {
  kind: number;
  layer: number;
  type: WeightType;
  rows: number;
  cols: number;
  bytes: Uint8Array;
}

export interface TinyModel {
  config: ModelConfig;
  tensors: TensorBytes[];
  /** The same weights dequantized, for ReferenceModel. */
  weights: ReferenceWeights;
}

export interface TinyModelOptions {
  config: ModelConfig;
  seed: number;
  /** ggml type of the matrices of each kind (norms are always F32). */
  types: (kind: number) => WeightType;
  tiedOutput: boolean;
}

const norms: number[] = [TensorKind.outputNorm, TensorKind.attnNorm, TensorKind.ffnNorm];

/** A llama model with random weights scaled so activations stay O(1) through the layers. */
export function tinyModel({ config, seed, types, tiedOutput }: TinyModelOptions): TinyModel {
  const random = rng(seed);
  const tensors: TensorBytes[] = [];
  const weights: ReferenceWeights = new Map();
  const add = (kind: number, layer: number): void => {
    const [rows, cols] = expectedShape(config, kind)!;
    const isNorm = norms.includes(kind);
    const type = isNorm ? GGMLType.F32 : types(kind);
    const values = isNorm
      ? uniform(random, cols, 0.2).map((v) => 1 + v)
      : uniform(random, rows * cols, kind === TensorKind.tokenEmbd ? 1 : Math.sqrt(3 / cols));
    const bytes = quantize(type, values, cols);
    tensors.push({ kind, layer, type, rows, cols, bytes });
    weights.set(weightKey(kind, layer), dequantize(type, bytes, rows, cols));
  };
  add(TensorKind.tokenEmbd, 0);
  add(TensorKind.outputNorm, 0);
  if (!tiedOutput) add(TensorKind.output, 0);
  for (let l = 0; l < config.layers; l++) {
    for (let kind = TensorKind.attnNorm; kind <= TensorKind.ffnDown; kind++) add(kind, l);
  }
  return { config, tensors, weights };
}
