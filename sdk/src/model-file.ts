/**
 * What a model GGUF means, read through the contract (sdk/src/contract): its architecture's hyperparameters and
 * options, where each tensor goes in the engine, and what it needs of memory. Everything a file asks for that the
 * engine does not run is refused here, by name, before any tensor is read.
 */
import {
  ARCHITECTURE_NAMES,
  ARCHITECTURES,
  HYPERPARAMETER_KEYS,
  IGNORED_KEYS,
  LLAMA_LAYER_KINDS,
  RECYCLE_GLOBAL_KINDS,
  TENSOR_KINDS,
  YARN_DEFAULTS,
  architecture,
  isArchitecture,
  tensorKind,
  type ArchitectureSpec,
  type Size,
  type TensorKindName,
} from './contract/architectures.js';
import type { DecoderConfig, ModelConfig, RopeScaling, SlidingWindow } from './contract/config.js';
import { ENGINE_TYPE_NAMES, GGMLType, ggmlTypeInfo, ggmlTypeName } from './contract/ggml-types.js';
import { GGUFError, RecycleGPTError, UnsupportedError } from './errors.js';
import type { GGUFHeader, GGUFMetadata, GGUFTensorInfo } from './gguf/types.js';

export function architectureOf(metadata: GGUFMetadata): string {
  const arch = metadata['general.architecture'];
  if (typeof arch !== 'string') throw new GGUFError('general.architecture is missing: this GGUF does not say what model it holds');
  return arch;
}

/** A model's hyperparameters as its file gives them: its config, less what the loader chooses. */
export interface ModelShape extends Omit<ModelConfig, 'contextLength' | 'kvType' | 'maxBatch' | 'sequences'> {
  trainedContextLength: number;
}

function uint(metadata: GGUFMetadata, key: string, fallback?: number): number {
  const value = metadata[key];
  if (value === undefined && fallback !== undefined) return fallback;
  if (ArrayBuffer.isView(value) || Array.isArray(value)) {
    throw new UnsupportedError(`metadata '${key}' gives a value per layer; this engine runs models whose layers all have the same shape`);
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new GGUFError(`metadata '${key}' must be a positive integer, got ${value === undefined ? 'nothing' : String(value)}`);
  }
  return value;
}

function float(metadata: GGUFMetadata, key: string, fallback?: number, { zero = false } = {}): number {
  const value = metadata[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (value === 0 && !zero)) {
    throw new GGUFError(`metadata '${key}' must be a ${zero ? 'non-negative' : 'positive'} number, got ${value === undefined ? 'nothing' : String(value)}`);
  }
  return value;
}

/** A llama-style stack's hyperparameters under `<prefix>.` (a model's, or a recycle head's under `recycle.`). */
export function decoderShape(meta: GGUFMetadata, prefix: string): Omit<DecoderConfig, 'contextLength' | 'kvType' | 'maxBatch'> & { dim: number; trainedContextLength: number } {
  const dim = uint(meta, `${prefix}.embedding_length`);
  const heads = uint(meta, `${prefix}.attention.head_count`);
  const headDim = uint(meta, `${prefix}.attention.key_length`, dim % heads === 0 ? dim / heads : undefined);
  const valueDim = uint(meta, `${prefix}.attention.value_length`, headDim);
  if (valueDim !== headDim) {
    throw new UnsupportedError(`${prefix}.attention.value_length ${valueDim} differs from key_length ${headDim}; this engine runs models whose keys and values have one head size`);
  }
  return {
    dim,
    layers: uint(meta, `${prefix}.block_count`),
    heads,
    kvHeads: uint(meta, `${prefix}.attention.head_count_kv`, heads),
    ffnDim: uint(meta, `${prefix}.feed_forward_length`),
    headDim,
    ropeDim: uint(meta, `${prefix}.rope.dimension_count`, headDim),
    ropeFreqBase: float(meta, `${prefix}.rope.freq_base`, 10000),
    rmsEps: float(meta, `${prefix}.attention.layer_norm_rms_epsilon`, undefined, { zero: true }),
    trainedContextLength: uint(meta, `${prefix}.context_length`, 2048),
  };
}

/** Refuses a metadata key under the architecture's prefix that this engine does not implement, by name. */
function checkKeys(meta: GGUFMetadata, spec: ArchitectureSpec): void {
  const known = new Set<string>([...HYPERPARAMETER_KEYS, ...spec.keys, ...IGNORED_KEYS]);
  for (const key of Object.keys(meta)) {
    if (!key.startsWith(`${spec.name}.`)) continue;
    const option = key.slice(spec.name.length + 1);
    const value = meta[key];
    if (!known.has(option)) {
      throw new UnsupportedError(`metadata '${key}' asks for an option this engine does not implement for ${spec.name}; it reads ${[...HYPERPARAMETER_KEYS, ...spec.keys].join(', ')}`);
    }
    if ((option === 'expert_count' || option === 'expert_used_count') && value !== 0) {
      throw new UnsupportedError(`'${key}' = ${String(value)}: mixture-of-experts models are not supported`);
    }
    if (option in YARN_DEFAULTS && value !== YARN_DEFAULTS[option]) {
      throw new UnsupportedError(`'${key}' = ${String(value)} is not supported: llama.cpp does not read it for ${spec.name} and uses ${YARN_DEFAULTS[option]}`);
    }
  }
}

function ropeScaling(meta: GGUFMetadata, arch: string, trainedContextLength: number): RopeScaling {
  const type = meta[`${arch}.rope.scaling.type`] ?? 'linear';
  if (type !== 'none' && type !== 'linear' && type !== 'yarn') {
    throw new UnsupportedError(`RoPE scaling '${String(type)}' (${arch}.rope.scaling.type) is not supported; this engine runs none, linear and yarn`);
  }
  const factorKey = meta[`${arch}.rope.scaling.factor`] !== undefined ? `${arch}.rope.scaling.factor` : `${arch}.rope.scale_linear`;
  const factor = float(meta, factorKey, 0, { zero: true });
  return {
    type,
    factor: factor === 0 ? 1 : factor,
    attnFactor: float(meta, `${arch}.rope.scaling.attn_factor`, 1),
    originalContext: uint(meta, `${arch}.rope.scaling.original_context_length`, trainedContextLength),
  };
}

/**
 * Gemma 3's windowed layers: `attention.sliding_window` (absent or 0: none) and the layer pattern, a period or a
 * flag per layer; a per-layer pattern must be periodic as llama.cpp's own patterns are.
 */
function slidingWindow(meta: GGUFMetadata, spec: ArchitectureSpec, layers: number): SlidingWindow | undefined {
  const arch = spec.name;
  if (!spec.slidingWindow) return undefined;
  const size = meta[`${arch}.attention.sliding_window`] ?? 0;
  if (size === 0) return undefined;
  const raw = meta[`${arch}.attention.sliding_window_pattern`] ?? spec.slidingWindow.defaultPattern;
  let pattern: number;
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0) {
    // 0: every layer is windowed, as llama.cpp's set_swa_pattern(0).
    pattern = raw === 0 ? layers + 1 : raw;
  } else if (Array.isArray(raw) || ArrayBuffer.isView(raw)) {
    const flags = Array.from(raw as ArrayLike<unknown>, Boolean);
    const firstGlobal = flags.indexOf(false);
    pattern = firstGlobal === -1 ? layers + 1 : firstGlobal + 1;
    if (flags.length !== layers || flags.some((windowed, l) => windowed !== l % pattern < pattern - 1)) {
      throw new UnsupportedError(`${arch}.attention.sliding_window_pattern [${flags.map(Number).join(', ')}] does not repeat with a period; this engine runs periodic patterns`);
    }
  } else {
    throw new GGUFError(`metadata '${arch}.attention.sliding_window_pattern' must be a count or a flag per layer, got ${String(raw)}`);
  }
  return { size: uint(meta, `${arch}.attention.sliding_window`), pattern, ropeFreqBase: float(meta, `${arch}.rope.freq_base_swa`, 10000) };
}

/** Reads a model's hyperparameters and checks its tensors against its architecture; the vocabulary size comes from token_embd, as in llama.cpp. */
export function modelShape(header: GGUFHeader): ModelShape {
  const meta = header.metadata;
  const arch = architectureOf(meta);
  if (!isArchitecture(arch)) {
    throw new UnsupportedError(`architecture '${arch}' is not supported; this engine runs ${ARCHITECTURE_NAMES.map((a) => `${a} (${ARCHITECTURES[a].examples})`).join(', ')}`);
  }
  const spec = architecture(arch);
  checkKeys(meta, spec);
  const embd = header.tensors.find((t) => t.name === 'token_embd.weight');
  if (!embd || embd.dims.length !== 2) throw new GGUFError("tensor 'token_embd.weight' is missing or not a matrix");
  const { trainedContextLength, ...decoder } = decoderShape(meta, arch);
  const shape: ModelShape = {
    architecture: arch,
    vocabSize: embd.dims[1]!,
    ...decoder,
    ropeScaling: ropeScaling(meta, arch, trainedContextLength),
    slidingWindow: slidingWindow(meta, spec, decoder.layers),
    attentionScaleDim: spec.attentionScale === 'gemma3' && decoder.layers === 62 ? Math.floor(decoder.dim / decoder.heads) : decoder.headDim,
    finalLogitSoftcap: spec.keys.includes('final_logit_softcapping') ? float(meta, `${arch}.final_logit_softcapping`, 0, { zero: true }) : 0,
    trainedContextLength,
  };
  checkTensors(header.tensors, shape);
  return shape;
}

/** Kinds by the name their GGUF tensors have after `blk.N.` (per-layer kinds) or in full (global ones). */
const KIND_BY_NAME = new Map<string, TensorKindName>(
  (Object.keys(TENSOR_KINDS) as TensorKindName[]).map((kind) => [TENSOR_KINDS[kind].gguf.replace('blk.{L}.', ''), kind]),
);

export interface TensorSlot {
  kind: number;
  layer: number;
  rows: number;
  cols: number;
}

/** The size a contract dimension stands for. */
function sizeOf(size: Size, s: Pick<ModelShape, 'vocabSize' | 'dim' | 'heads' | 'kvHeads' | 'headDim' | 'ffnDim' | 'ropeDim'>): number {
  switch (size) {
    case 'vocab': return s.vocabSize;
    case 'dim': return s.dim;
    case 'qDim': return s.heads * s.headDim;
    case 'kvDim': return s.kvHeads * s.headDim;
    case 'ffn': return s.ffnDim;
    case 'headDim': return s.headDim;
    case 'ropePairs': return s.ropeDim / 2;
  }
}

/** Checks the type a tensor is stored in against what the engine runs. */
function checkType(tensor: GGUFTensorInfo, f32Only = false): void {
  if (f32Only && tensor.type !== GGMLType.F32) {
    throw new UnsupportedError(`tensor '${tensor.name}' has type ${ggmlTypeName(tensor.type)}; it must be F32 (as llama.cpp reads it)`);
  }
  if (!ggmlTypeInfo(tensor.type)?.engine) {
    throw new UnsupportedError(
      `tensor '${tensor.name}' has type ${ggmlTypeName(tensor.type)}, which this engine does not run; it runs ${ENGINE_TYPE_NAMES.join(', ')} (requantize with llama-quantize to one of them, e.g. Q4_K_M)`,
    );
  }
  if (tensor.dims.length > 2) throw new GGUFError(`tensor '${tensor.name}' has ${tensor.dims.length} dimensions; expected at most 2`);
}

/** The kind of a model tensor, with its layer; refused by name when it is not part of `spec`. */
function kindOf(tensor: GGUFTensorInfo, spec: ArchitectureSpec, layers: number): { kind: TensorKindName; layer: number } {
  const block = /^blk\.(\d+)\.(.+)$/.exec(tensor.name);
  const kind = KIND_BY_NAME.get(block ? block[2]! : tensor.name);
  const perLayer = kind !== undefined && TENSOR_KINDS[kind].gguf.startsWith('blk.');
  if (kind === undefined || perLayer !== !!block || !spec.tensors[kind]) {
    const names = (Object.keys(spec.tensors) as TensorKindName[]).map((k) => TENSOR_KINDS[k].gguf);
    throw new UnsupportedError(`tensor '${tensor.name}' is not part of the ${spec.name} architecture this engine runs (its tensors: ${names.join(', ')})`);
  }
  const layer = block ? Number(block[1]) : 0;
  if (layer >= layers) throw new GGUFError(`tensor '${tensor.name}' names layer ${layer}, but the model has ${layers}`);
  return { kind, layer };
}

/** Where a model tensor goes in the engine; unknown names, kinds and types are refused by name. */
export function tensorSlot(tensor: GGUFTensorInfo, shape: Pick<ModelShape, 'architecture' | 'layers'>): TensorSlot {
  const { kind, layer } = kindOf(tensor, architecture(shape.architecture), shape.layers);
  checkType(tensor, tensorKind(kind).f32Only);
  return { kind: TENSOR_KINDS[kind].id, layer, rows: tensor.dims[1] ?? 1, cols: tensor.dims[0]! };
}

/** Where a recycle head tensor (`recycle.` + name) goes: its projection, final norm or a llama layer tensor. */
export function recycleTensorSlot(tensor: GGUFTensorInfo, layers: number): TensorSlot {
  const name = tensor.name.startsWith('recycle.') ? tensor.name.slice('recycle.'.length) : '';
  const block = /^blk\.(\d+)\.(.+)$/.exec(name);
  const layerKind = block ? KIND_BY_NAME.get(block[2]!) : undefined;
  const kind = block ? (layerKind && (LLAMA_LAYER_KINDS as readonly string[]).includes(layerKind) ? TENSOR_KINDS[layerKind].id : undefined) : RECYCLE_GLOBAL_KINDS[name];
  if (kind === undefined) throw new UnsupportedError(`tensor '${tensor.name}' is not part of a recycle head (training/README.md lists its tensors)`);
  const layer = block ? Number(block[1]) : 0;
  if (layer >= layers) throw new GGUFError(`tensor '${tensor.name}' names layer ${layer}, but the head has ${layers}`);
  checkType(tensor);
  return { kind, layer, rows: tensor.dims[1] ?? 1, cols: tensor.dims[0]! };
}

/** Every tensor fits its kind's shape and every required one is there: refused by name otherwise. */
function checkTensors(tensors: GGUFTensorInfo[], shape: ModelShape): void {
  const spec = architecture(shape.architecture);
  const seen = new Set<string>();
  for (const tensor of tensors) {
    const { kind } = kindOf(tensor, spec, shape.layers);
    checkType(tensor, tensorKind(kind).f32Only);
    const want = TENSOR_KINDS[kind].dims.map((d) => sizeOf(d, shape));
    const got = tensor.dims.length === 2 && tensor.dims[1] === 1 && want.length === 1 ? tensor.dims.slice(0, 1) : tensor.dims;
    if (got.join(',') !== want.join(',')) {
      throw new RecycleGPTError('MODEL_INVALID', `tensor '${tensor.name}' is ${tensor.dims.join(' × ')}, but the model's hyperparameters make it ${want.join(' × ')} (dims ne0 first); the file is inconsistent`);
    }
    seen.add(tensor.name);
  }
  for (const [kind, presence] of Object.entries(spec.tensors) as [TensorKindName, string][]) {
    if (presence !== 'required') continue;
    const name = TENSOR_KINDS[kind].gguf;
    const names = name.includes('{L}') ? Array.from({ length: shape.layers }, (_, l) => name.replace('{L}', String(l))) : [name];
    const missing = names.find((n) => !seen.has(n));
    if (missing) throw new UnsupportedError(`tensor '${missing}' is missing: a ${spec.name} model needs it (the file is incomplete or not a ${spec.name} model)`);
  }
}

/** Bytes the engine holds for a file's weights (its tensors' bytes). */
export function weightBytes(header: GGUFHeader): number {
  return header.tensors.reduce((sum, t) => sum + t.byteSize, 0);
}
