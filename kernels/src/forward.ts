/// <reference types="@webgpu/types" />
import type { ModelConfig } from './config.js';
import type { Dispatch, KernelCache } from './gpu.js';
import type { GpuTensor } from './tensors.js';
import { attention } from './wgsl/attention.js';
import { elementwise } from './wgsl/elementwise.js';
import { embedding } from './wgsl/embedding.js';
import { matmul } from './wgsl/matmul.js';
import { rmsnorm } from './wgsl/rmsnorm.js';
import { rope, ropeTable } from './wgsl/rope.js';
import { topK } from './wgsl/select.js';

export interface LayerWeights {
  attnNorm: GpuTensor; q: GpuTensor; k: GpuTensor; v: GpuTensor; attnOutput: GpuTensor;
  ffnNorm: GpuTensor; gate: GpuTensor; up: GpuTensor; down: GpuTensor;
}
export interface ModelWeights {
  tokenEmbd: GpuTensor;
  outputNorm: GpuTensor;
  /** output.weight, or token_embd when the output matrix is tied to it. */
  output: GpuTensor;
  layers: LayerWeights[];
}

export interface Scratch {
  step: GPUBuffer;
  tokens: GPUBuffer;
  /** Residual stream [max_batch × dim]. */
  x: GPUBuffer;
  /** Normed activations [max_batch × dim]; after a forward: the hidden states after the final RMSNorm. */
  hidden: GPUBuffer;
  logits: GPUBuffer;
  topIds: GPUBuffer;
  topValues: GPUBuffer;
  /** MAP_READ copy target for everything read back. */
  readback: GPUBuffer;
}

export interface ForwardPlan {
  scratch: Scratch;
  /** Embedding → layers → final norm → output matrix, encoded in this order on every forward. */
  dispatches: Dispatch[];
  /** Greedy (k = 1) or top-k over the logits rows; built once per k. */
  select(k: number): Dispatch;
  /** Every buffer the plan owns (scratch, KV cache), for dispose. */
  buffers: GPUBuffer[];
}

/** The most candidates a top-k readback holds per row. */
export const MAX_TOP_K_BUFFER = 256;

/** Allocates scratch and KV cache and builds the dispatch list of one forward. */
export function buildForward(kernels: KernelCache, config: ModelConfig, weights: ModelWeights): ForwardPlan {
  const { device } = kernels;
  const B = config.maxBatch;
  const qDim = config.heads * config.headDim;
  const kvDim = config.kvHeads * config.headDim;
  const buffers: GPUBuffer[] = [];
  const storage = (label: string, floats: number, extra = 0): GPUBuffer => {
    const buffer = device.createBuffer({ label, size: Math.max(floats, 1) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | extra });
    buffers.push(buffer);
    return buffer;
  };
  const kvWordsPerLayer = config.kvType === 'f16' ? (config.contextLength * kvDim) / 2 : config.contextLength * kvDim;
  const readbackBytes = 4 * B * Math.max(config.vocabSize, config.dim, 2 * Math.min(MAX_TOP_K_BUFFER, config.vocabSize));
  const readback = device.createBuffer({ label: 'readback', size: readbackBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  buffers.push(readback);
  const step = device.createBuffer({ label: 'step', size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  buffers.push(step);
  const s = {
    step,
    tokens: storage('tokens', B),
    x: storage('x', B * config.dim),
    hidden: storage('xb', B * config.dim),
    q: storage('q', B * qDim),
    k: storage('k', B * kvDim),
    v: storage('v', B * kvDim),
    attnOut: storage('attn_out', B * qDim),
    gate: storage('gate', B * config.ffnDim),
    up: storage('up', B * config.ffnDim),
    scores: storage('scores', B * config.heads * config.contextLength),
    logits: storage('logits', B * config.vocabSize),
    topIds: storage('top_ids', B * MAX_TOP_K_BUFFER),
    topValues: storage('top_values', B * MAX_TOP_K_BUFFER),
    readback,
    ropeTable: storage('rope_table', config.contextLength * config.ropeDim),
  };
  device.queue.writeBuffer(s.ropeTable, 0, ropeTable(config.contextLength, config.ropeDim, config.ropeFreqBase));

  const mul = (w: GpuTensor, x: GPUBuffer, y: GPUBuffer, fromLogits = false): Dispatch[] =>
    w.chunks.map((c) => matmul(kernels, { step, weight: c.buffer, type: w.type, rows: c.rows, cols: w.cols, x, y, outRow0: c.row0, outStride: w.rows, fromLogits }));
  const norm = (w: GpuTensor, x: GPUBuffer, out: GPUBuffer): Dispatch =>
    rmsnorm(kernels, { step, x, weight: w.chunks[0]!.buffer, out, dim: config.dim, eps: config.rmsEps });
  const ropeOf = (x: GPUBuffer, heads: number): Dispatch =>
    rope(kernels, { step, x, table: s.ropeTable, heads, headDim: config.headDim, ropeDim: config.ropeDim });

  const dispatches: Dispatch[] = weights.tokenEmbd.chunks.map((c) =>
    embedding(kernels, { step, weight: c.buffer, type: weights.tokenEmbd.type, rows: c.rows, cols: config.dim, row0: c.row0, tokens: s.tokens, x: s.x }));
  for (const layer of weights.layers) {
    const kCache = storage('k_cache', kvWordsPerLayer);
    const vCache = storage('v_cache', kvWordsPerLayer);
    dispatches.push(
      norm(layer.attnNorm, s.x, s.hidden),
      ...mul(layer.q, s.hidden, s.q), ...mul(layer.k, s.hidden, s.k), ...mul(layer.v, s.hidden, s.v),
      ropeOf(s.q, config.heads), ropeOf(s.k, config.kvHeads),
      ...attention(kernels, {
        step, q: s.q, k: s.k, v: s.v, kCache, vCache, scores: s.scores, out: s.attnOut,
        heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim, ctx: config.contextLength, kvF16: config.kvType === 'f16',
      }),
      ...mul(layer.attnOutput, s.attnOut, s.hidden),
      elementwise(kernels, 'add', { step, a: s.x, b: s.hidden, width: config.dim }),
      norm(layer.ffnNorm, s.x, s.hidden),
      ...mul(layer.gate, s.hidden, s.gate), ...mul(layer.up, s.hidden, s.up),
      elementwise(kernels, 'swiglu', { step, a: s.gate, b: s.up, width: config.ffnDim }),
      ...mul(layer.down, s.gate, s.hidden),
      elementwise(kernels, 'add', { step, a: s.x, b: s.hidden, width: config.dim }),
    );
  }
  dispatches.push(norm(weights.outputNorm, s.x, s.hidden), ...mul(weights.output, s.hidden, s.logits, true));

  const selects = new Map<number, Dispatch>();
  const select = (k: number): Dispatch => {
    let d = selects.get(k);
    if (!d) {
      d = topK(kernels, { step, logits: s.logits, ids: s.topIds, values: s.topValues, vocab: config.vocabSize, k });
      selects.set(k, d);
    }
    return d;
  };
  return { scratch: s, dispatches, select, buffers };
}
