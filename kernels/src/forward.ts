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
/** A recycle head: its projection, layers and final norm; tokenEmbd and output are the base's. */
export interface RecycleWeights extends ModelWeights {
  /** dim × 2·dim: [hidden ; embedding] → the head's residual stream. */
  proj: GpuTensor;
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
export interface RecycleScratch extends Scratch {
  /** The tokens' embeddings [max_batch × dim]. */
  embedded: GPUBuffer;
  /** Input rows [max_batch × 2·dim]: [hidden row ; embedding], assembled by buffer copies between passes. */
  joined: GPUBuffer;
}

export interface ForwardPlan<S extends Scratch = Scratch> {
  scratch: S;
  /** The embedding lookup: into scratch.x (base model) or scratch.embedded (recycle head). */
  input: Dispatch[];
  /** (Recycle head: the projection, then) the layers and the final RMSNorm. */
  body: Dispatch[];
  /** The output matrix; skipped when no logits are asked for. */
  output: Dispatch[];
  /** Greedy (k = 1) or top-k over the logits rows; built once per k. */
  select(k: number): Dispatch;
  /** Every buffer the plan owns (scratch, KV cache), for dispose. */
  buffers: GPUBuffer[];
}

/** The most candidates a top-k readback holds per row. */
export const MAX_TOP_K_BUFFER = 256;

/**
 * Bytes of the largest buffer a forward needs that cannot be split as weights are (one layer's K or V cache,
 * attention scores, logits and their readback); each must fit one storage binding and one buffer.
 */
export function largestBufferBytes(config: ModelConfig): number {
  const kvBytes = config.contextLength * config.kvHeads * config.headDim * (config.kvType === 'f16' ? 2 : 4);
  const scores = 4 * config.maxBatch * config.heads * config.contextLength;
  return Math.max(kvBytes, scores, readbackBytes(config));
}

/** Logits, hidden rows or top-k ids with their values, whichever is largest, plus a draftAndCheck's drafts. */
function readbackBytes(config: ModelConfig): number {
  return 4 * config.maxBatch * (Math.max(config.vocabSize, config.dim, 2 * Math.min(MAX_TOP_K_BUFFER, config.vocabSize)) + 1);
}

/** Allocates scratch and KV cache and builds the dispatch lists of one forward. */
export function buildForward(kernels: KernelCache, config: ModelConfig, weights: ModelWeights): ForwardPlan {
  const plan = new PlanBuilder(kernels, config);
  return plan.finish(plan.embed(weights.tokenEmbd, plan.scratch.x), plan.decoder(weights), weights.output);
}

/** As buildForward, for a recycle head whose config has the base's vocabSize and dim. */
export function buildRecycleForward(kernels: KernelCache, config: ModelConfig, weights: RecycleWeights): ForwardPlan<RecycleScratch> {
  const plan = new PlanBuilder(kernels, config);
  const scratch = {
    ...plan.scratch,
    embedded: plan.storage('embedded', config.maxBatch * config.dim),
    joined: plan.storage('joined', config.maxBatch * 2 * config.dim),
  };
  const body = [...plan.mul(weights.proj, scratch.joined, scratch.x), ...plan.decoder(weights)];
  return { ...plan.finish(plan.embed(weights.tokenEmbd, scratch.embedded), body, weights.output), scratch };
}

/** Scratch, KV caches and the dispatches that read and write them, for one config. */
class PlanBuilder {
  readonly buffers: GPUBuffer[] = [];
  readonly scratch: Scratch & Record<'q' | 'k' | 'v' | 'attnOut' | 'gate' | 'up' | 'scores' | 'ropeTable', GPUBuffer>;
  private readonly device: GPUDevice;

  constructor(private readonly kernels: KernelCache, private readonly config: ModelConfig) {
    this.device = kernels.device;
    const B = config.maxBatch;
    const qDim = config.heads * config.headDim;
    const kvDim = config.kvHeads * config.headDim;
    const readback = this.device.createBuffer({ label: 'readback', size: readbackBytes(config), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const step = this.device.createBuffer({ label: 'step', size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.buffers.push(readback, step);
    this.scratch = {
      step,
      tokens: this.storage('tokens', B),
      x: this.storage('x', B * config.dim),
      hidden: this.storage('xb', B * config.dim),
      q: this.storage('q', B * qDim),
      k: this.storage('k', B * kvDim),
      v: this.storage('v', B * kvDim),
      attnOut: this.storage('attn_out', B * qDim),
      gate: this.storage('gate', B * config.ffnDim),
      up: this.storage('up', B * config.ffnDim),
      scores: this.storage('scores', B * config.heads * config.contextLength),
      logits: this.storage('logits', B * config.vocabSize),
      topIds: this.storage('top_ids', B * MAX_TOP_K_BUFFER),
      topValues: this.storage('top_values', B * MAX_TOP_K_BUFFER),
      readback,
      ropeTable: this.storage('rope_table', config.contextLength * config.ropeDim),
    };
    this.device.queue.writeBuffer(this.scratch.ropeTable, 0, ropeTable(config.contextLength, config.ropeDim, config.ropeFreqBase));
  }

  storage(label: string, floats: number): GPUBuffer {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const buffer = this.device.createBuffer({ label, size: Math.max(floats, 1) * 4, usage });
    this.buffers.push(buffer);
    return buffer;
  }

  mul(w: GpuTensor, x: GPUBuffer, y: GPUBuffer, fromLogits = false): Dispatch[] {
    return w.chunks.map((c) =>
      matmul(this.kernels, { step: this.scratch.step, weight: c.buffer, type: w.type, rows: c.rows, cols: w.cols, x, y, outRow0: c.row0, outStride: w.rows, fromLogits }));
  }

  embed(table: GpuTensor, x: GPUBuffer): Dispatch[] {
    const { step, tokens } = this.scratch;
    return table.chunks.map((c) => embedding(this.kernels, { step, weight: c.buffer, type: table.type, rows: c.rows, cols: this.config.dim, row0: c.row0, tokens, x }));
  }

  /** Every layer (each with its own KV cache) over scratch.x, then the final RMSNorm into scratch.hidden. */
  decoder(weights: Pick<ModelWeights, 'layers' | 'outputNorm'>): Dispatch[] {
    const { kernels, config, scratch: s } = this;
    const { step } = s;
    const kvDim = config.kvHeads * config.headDim;
    const kvWordsPerLayer = config.kvType === 'f16' ? (config.contextLength * kvDim) / 2 : config.contextLength * kvDim;
    const norm = (w: GpuTensor, x: GPUBuffer, out: GPUBuffer): Dispatch =>
      rmsnorm(kernels, { step, x, weight: w.chunks[0]!.buffer, out, dim: config.dim, eps: config.rmsEps });
    const ropeOf = (x: GPUBuffer, heads: number): Dispatch =>
      rope(kernels, { step, x, table: s.ropeTable, heads, headDim: config.headDim, ropeDim: config.ropeDim });
    const dispatches: Dispatch[] = [];
    for (const layer of weights.layers) {
      const kCache = this.storage('k_cache', kvWordsPerLayer);
      const vCache = this.storage('v_cache', kvWordsPerLayer);
      dispatches.push(
        norm(layer.attnNorm, s.x, s.hidden),
        ...this.mul(layer.q, s.hidden, s.q), ...this.mul(layer.k, s.hidden, s.k), ...this.mul(layer.v, s.hidden, s.v),
        ropeOf(s.q, config.heads), ropeOf(s.k, config.kvHeads),
        ...attention(kernels, {
          step, q: s.q, k: s.k, v: s.v, kCache, vCache, scores: s.scores, out: s.attnOut,
          heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim, ctx: config.contextLength, kvF16: config.kvType === 'f16',
        }),
        ...this.mul(layer.attnOutput, s.attnOut, s.hidden),
        elementwise(kernels, 'add', { step, a: s.x, b: s.hidden, width: config.dim }),
        norm(layer.ffnNorm, s.x, s.hidden),
        ...this.mul(layer.gate, s.hidden, s.gate), ...this.mul(layer.up, s.hidden, s.up),
        elementwise(kernels, 'swiglu', { step, a: s.gate, b: s.up, width: config.ffnDim }),
        ...this.mul(layer.down, s.gate, s.hidden),
        elementwise(kernels, 'add', { step, a: s.x, b: s.hidden, width: config.dim }),
      );
    }
    dispatches.push(norm(weights.outputNorm, s.x, s.hidden));
    return dispatches;
  }

  finish(input: Dispatch[], body: Dispatch[], output: GpuTensor): ForwardPlan {
    const { kernels, config, scratch: s } = this;
    const selects = new Map<number, Dispatch>();
    const select = (k: number): Dispatch => {
      let d = selects.get(k);
      if (!d) {
        d = topK(kernels, { step: s.step, logits: s.logits, ids: s.topIds, values: s.topValues, vocab: config.vocabSize, k });
        selects.set(k, d);
      }
      return d;
    };
    return { scratch: s, input, body, output: this.mul(output, s.hidden, s.logits, true), select, buffers: this.buffers };
  }
}
