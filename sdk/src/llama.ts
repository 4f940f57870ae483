/** What a llama-family GGUF means: hyperparameters from metadata and tensor names → engine tensor kinds. */
import { TensorKind, type LlamaConfig } from './binding.js';
import { GGUFError, UnsupportedError } from './errors.js';
import type { GGUFHeader, GGUFMetadata, GGUFTensorInfo } from './gguf/types.js';
import { GGMLType } from './gguf/types.js';
import { ggmlTypeName } from './gguf/ggml-types.js';

/** Architectures whose GGUF tensors and numerics are llama's. */
const LLAMA_FAMILY = new Set(['llama']);

const ENGINE_TYPES = new Set<number>(Object.values(GGMLType));

const BLOCK_TENSORS: Record<string, number> = {
  attn_norm: TensorKind.attnNorm,
  attn_q: TensorKind.attnQ,
  attn_k: TensorKind.attnK,
  attn_v: TensorKind.attnV,
  attn_output: TensorKind.attnOutput,
  ffn_norm: TensorKind.ffnNorm,
  ffn_gate: TensorKind.ffnGate,
  ffn_up: TensorKind.ffnUp,
  ffn_down: TensorKind.ffnDown,
};

const HEAD_TENSORS: Record<string, number> = {
  'proj.weight': TensorKind.recycleProj,
  'output_norm.weight': TensorKind.outputNorm,
};

const GLOBAL_TENSORS: Record<string, number> = {
  'token_embd.weight': TensorKind.tokenEmbd,
  'output_norm.weight': TensorKind.outputNorm,
  'output.weight': TensorKind.output,
};

export function architectureOf(metadata: GGUFMetadata): string {
  const arch = metadata['general.architecture'];
  if (typeof arch !== 'string') throw new GGUFError('general.architecture is missing: this GGUF does not say what model it holds');
  return arch;
}

function uint(metadata: GGUFMetadata, key: string, fallback?: number): number {
  const value = metadata[key];
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new GGUFError(`metadata '${key}' must be a positive integer, got ${value === undefined ? 'nothing' : String(value)}`);
  }
  return value;
}

function float(metadata: GGUFMetadata, key: string, fallback: number): number {
  const value = metadata[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new GGUFError(`metadata '${key}' must be a positive number, got ${String(value)}`);
  }
  return value;
}

export interface LlamaShape extends Omit<LlamaConfig, 'contextLength' | 'kvType' | 'maxBatch'> {
  trainedContextLength: number;
}

/** Decoder-stack hyperparameters under `${arch}.` (llama's keys; a recycle head uses the same under `recycle.`). */
export function decoderShape(meta: GGUFMetadata, arch: string): Omit<LlamaShape, 'vocabSize'> {
  const scaling = meta[`${arch}.rope.scaling.type`];
  if (scaling !== undefined && scaling !== 'none') {
    throw new UnsupportedError(`RoPE scaling '${String(scaling)}' is not supported yet`);
  }
  const dim = uint(meta, `${arch}.embedding_length`);
  const heads = uint(meta, `${arch}.attention.head_count`);
  const headDim = uint(meta, `${arch}.attention.key_length`, dim % heads === 0 ? dim / heads : undefined);
  return {
    dim,
    layers: uint(meta, `${arch}.block_count`),
    heads,
    kvHeads: uint(meta, `${arch}.attention.head_count_kv`, heads),
    ffnDim: uint(meta, `${arch}.feed_forward_length`),
    headDim,
    ropeDim: uint(meta, `${arch}.rope.dimension_count`, headDim),
    ropeFreqBase: float(meta, `${arch}.rope.freq_base`, 10000),
    rmsEps: float(meta, `${arch}.attention.layer_norm_rms_epsilon`, 1e-5),
    trainedContextLength: uint(meta, `${arch}.context_length`, 2048),
  };
}

/** Reads llama hyperparameters; the vocabulary size comes from token_embd, as llama.cpp does. */
export function llamaShape(header: GGUFHeader): LlamaShape {
  const arch = architectureOf(header.metadata);
  if (!LLAMA_FAMILY.has(arch)) {
    throw new UnsupportedError(`architecture '${arch}' is not supported; this engine runs llama-family models (general.architecture = "llama")`);
  }
  const embd = header.tensors.find((t) => t.name === 'token_embd.weight');
  if (!embd || embd.dims.length !== 2) throw new GGUFError("tensor 'token_embd.weight' is missing or not a matrix");
  return { vocabSize: embd.dims[1], ...decoderShape(header.metadata, arch) };
}

export interface TensorSlot {
  kind: number;
  layer: number;
  rows: number;
  cols: number;
}

/**
 * Where a tensor goes in the engine; unknown names and types are refused by name. A recycle head's
 * tensors carry the `recycle.` prefix and use kind 0 for its projection, 1 for its final norm.
 */
export function tensorSlot(tensor: GGUFTensorInfo, layers: number, prefix = ''): TensorSlot {
  const name = tensor.name.startsWith(prefix) ? tensor.name.slice(prefix.length) : '';
  let kind = prefix ? HEAD_TENSORS[name] : GLOBAL_TENSORS[name];
  let layer = 0;
  const block = /^blk\.(\d+)\.(\w+)\.weight$/.exec(name);
  if (block) {
    layer = Number(block[1]);
    kind = BLOCK_TENSORS[block[2]];
    if (layer >= layers) throw new GGUFError(`tensor '${tensor.name}' names layer ${layer}, but the model has ${layers}`);
  }
  if (kind === undefined) {
    throw new UnsupportedError(`tensor '${tensor.name}' is not part of the ${prefix ? 'recycle head' : 'llama architecture'} this engine runs`);
  }
  if (!ENGINE_TYPES.has(tensor.type)) {
    throw new UnsupportedError(
      `tensor '${tensor.name}' has type ${ggmlTypeName(tensor.type)}; this engine runs ${Object.keys(GGMLType).join(', ')} (requantize with llama-quantize)`,
    );
  }
  if (tensor.dims.length > 2) throw new GGUFError(`tensor '${tensor.name}' has ${tensor.dims.length} dimensions; expected at most 2`);
  return { kind, layer, rows: tensor.dims[1] ?? 1, cols: tensor.dims[0] };
}
