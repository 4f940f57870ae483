import { KernelError } from './errors.js';
import { GGMLType, isWeightType } from './ggml.js';

/**
 * The model shape the kernels read: their own structural interface, which the SDK's model config satisfies (it has
 * these fields and more). For the kernels `maxBatch` is at most MAX_BATCH, since they keep one accumulator per
 * token. The kernels run plain llama models; the optional fields are read only to refuse what they do not run
 * (see `configProblem`).
 */
export interface ModelConfig {
  vocabSize: number;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffnDim: number;
  contextLength: number;
  headDim: number;
  ropeDim: number;
  ropeFreqBase: number;
  rmsEps: number;
  kvType: 'f16' | 'f32';
  maxBatch: number;
  architecture?: string;
  ropeScaling?: { type: string; factor: number; attnFactor: number };
  slidingWindow?: unknown;
  attentionScaleDim?: number;
  finalLogitSoftcap?: number;
  sequences?: number;
}

/** Tokens per forward the matmul kernels accumulate at once. */
export const MAX_BATCH = 8;

/** Tensor kinds of `rg_tensor_reserve`, in ARCHITECTURE.md order. */
export const TensorKind = {
  tokenEmbd: 0, outputNorm: 1, output: 2, attnNorm: 3, attnQ: 4, attnK: 5, attnV: 6,
  attnOutput: 7, ffnNorm: 8, ffnGate: 9, ffnUp: 10, ffnDown: 11,
} as const;
export type TensorKindId = (typeof TensorKind)[keyof typeof TensorKind];

/** A recycle head's own hyperparameters (the rg_recycle_new fields); its vocabulary and width are the base's. */
export type RecycleConfig = Omit<ModelConfig, 'vocabSize' | 'dim'>;

/** Kinds of rg_recycle_reserve that differ from the base's: 0 is the projection, 2 (the output matrix) is the base's. */
export const RecycleKind = { proj: 0, outputNorm: 1, output: 2 } as const;

/** Kinds that exist once per model rather than once per layer. */
export function isGlobalKind(kind: number): boolean {
  return kind <= TensorKind.output;
}

const NORM_KINDS: readonly number[] = [TensorKind.outputNorm, TensorKind.attnNorm, TensorKind.ffnNorm];

/**
 * Why the kernels cannot take a tensor of `kind` stored as ggml `type`, or undefined: they have a plain llama model's
 * kinds (ids 0..11 of `rg_tensor_reserve`), read F32, F16, Q4_0 and Q8_0 matrices and F32 norms.
 */
export function tensorProblem(kind: number, type: number): string | undefined {
  if (!(Number.isInteger(kind) && kind >= TensorKind.tokenEmbd && kind <= TensorKind.ffnDown)) return `it has no tensor kind ${kind} (a plain llama model's kinds are 0..11)`;
  if (NORM_KINDS.includes(kind) && type !== GGMLType.F32) return `it reads norm weights in F32 only, not ggml type ${type}`;
  if (!isWeightType(type)) return `it reads F32, F16, Q4_0 and Q8_0 weights only, not ggml type ${type}`;
  return undefined;
}

/**
 * What in `config` the kernels do not run, in words, or undefined: they run the llama architecture with plain RoPE
 * (no frequency scaling), one KV sequence, attention scaled by 1/√head_dim and plain logits.
 */
export function configProblem(config: ModelConfig): string | undefined {
  const { ropeScaling: rope } = config;
  if (config.architecture !== undefined && config.architecture !== 'llama') return `architecture '${config.architecture}'`;
  if (rope && (rope.type === 'yarn' || (rope.type === 'linear' && rope.factor !== 1) || rope.attnFactor !== 1)) return `RoPE scaling (${rope.type}, factor ${rope.factor})`;
  if (config.slidingWindow !== undefined) return 'sliding-window attention';
  if (config.attentionScaleDim !== undefined && config.attentionScaleDim !== config.headDim) return `attention scaled by 1/√${config.attentionScaleDim}`;
  if (config.finalLogitSoftcap) return 'soft-capped logits';
  if (config.sequences !== undefined && config.sequences !== 1) return `${config.sequences} KV sequences`;
  return undefined;
}

/** rows × cols each kind must have. */
export function expectedShape(config: ModelConfig, kind: number): [rows: number, cols: number] | undefined {
  const qDim = config.heads * config.headDim;
  const kvDim = config.kvHeads * config.headDim;
  const shapes: Record<number, [number, number]> = {
    [TensorKind.tokenEmbd]: [config.vocabSize, config.dim],
    [TensorKind.outputNorm]: [1, config.dim],
    [TensorKind.output]: [config.vocabSize, config.dim],
    [TensorKind.attnNorm]: [1, config.dim],
    [TensorKind.attnQ]: [qDim, config.dim],
    [TensorKind.attnK]: [kvDim, config.dim],
    [TensorKind.attnV]: [kvDim, config.dim],
    [TensorKind.attnOutput]: [config.dim, qDim],
    [TensorKind.ffnNorm]: [1, config.dim],
    [TensorKind.ffnGate]: [config.ffnDim, config.dim],
    [TensorKind.ffnUp]: [config.ffnDim, config.dim],
    [TensorKind.ffnDown]: [config.dim, config.ffnDim],
  };
  return shapes[kind];
}

/** rows × cols of each head kind, `config` being the head's config with the base's vocabSize and dim. */
export function expectedRecycleShape(config: ModelConfig, kind: number): [rows: number, cols: number] | undefined {
  if (kind === RecycleKind.proj) return [config.dim, 2 * config.dim];
  return kind === RecycleKind.output ? undefined : expectedShape(config, kind);
}

function invalid(message: string): KernelError {
  return new KernelError('MODEL_INVALID', `${message} Check the model's GGUF metadata.`);
}

export function validateConfig(config: ModelConfig): void {
  const counts: (keyof ModelConfig)[] = ['vocabSize', 'dim', 'layers', 'heads', 'kvHeads', 'ffnDim', 'contextLength', 'headDim', 'ropeDim', 'maxBatch'];
  for (const key of counts) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 0x7fffffff) {
      throw invalid(`Model config ${key} must be a positive integer, got ${String(value)}.`);
    }
  }
  if (config.heads % config.kvHeads !== 0) throw invalid(`n_heads (${config.heads}) must be a multiple of n_kv_heads (${config.kvHeads}).`);
  if (config.headDim % 2 !== 0) throw invalid(`head_dim must be even for RoPE pairs, got ${config.headDim}.`);
  if (config.ropeDim % 2 !== 0 || config.ropeDim > config.headDim) throw invalid(`rope_dim must be even and at most head_dim (${config.headDim}), got ${config.ropeDim}.`);
  if (config.maxBatch > MAX_BATCH) throw invalid(`The WebGPU backend runs at most ${MAX_BATCH} tokens per forward, asked for ${config.maxBatch}.`);
  if (!(config.ropeFreqBase > 0) || !(config.rmsEps > 0)) throw invalid('rope_freq_base and rms_eps must be positive.');
  if (config.kvType !== 'f16' && config.kvType !== 'f32') throw invalid(`kvType must be 'f16' or 'f32', got ${String(config.kvType)}.`);
  const problem = configProblem(config);
  if (problem) throw new KernelError('GGUF_UNSUPPORTED', `The WebGPU backend does not run ${problem}; use the wasm backend.`);
}
