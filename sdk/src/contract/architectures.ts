/**
 * The architectures the engine runs, as data (after llama.cpp's per-architecture tensor tables, `src/models/*.cpp`,
 * and what `convert_hf_to_gguf.py` writes): which tensors each has and must have, their shapes in terms of the
 * hyperparameters, and the options that set its layers apart. The SDK reads GGUF files through it
 * (sdk/src/model-file.ts), the Rust engine mirrors it (`wasm/src/catalog.rs` kinds, `config.rs` flags) and
 * test/contract.test.ts checks the two against each other through the ABI.
 */

/** The sizes a tensor dimension takes, from the hyperparameters. */
export type Size = 'vocab' | 'dim' | 'qDim' | 'kvDim' | 'ffn' | 'headDim' | 'ropePairs';

export interface TensorKindSpec {
  /** The kind's id in the engine's ABI (`rg_tensor_reserve`). */
  id: number;
  /** GGUF name; `{L}` stands for the layer number. */
  gguf: string;
  /** GGUF dims, ne0 (the contiguous one) first: a matrix has two, a vector (widened to f32 by the engine) one. */
  dims: readonly Size[];
  /** Stored as F32 only (llama.cpp reads RoPE factors as F32). */
  f32Only?: boolean;
}

/** Every tensor the engine knows, by kind, in ABI id order. */
export const TENSOR_KINDS = {
  tokenEmbd: { id: 0, gguf: 'token_embd.weight', dims: ['dim', 'vocab'] },
  outputNorm: { id: 1, gguf: 'output_norm.weight', dims: ['dim'] },
  output: { id: 2, gguf: 'output.weight', dims: ['dim', 'vocab'] },
  attnNorm: { id: 3, gguf: 'blk.{L}.attn_norm.weight', dims: ['dim'] },
  attnQ: { id: 4, gguf: 'blk.{L}.attn_q.weight', dims: ['dim', 'qDim'] },
  attnK: { id: 5, gguf: 'blk.{L}.attn_k.weight', dims: ['dim', 'kvDim'] },
  attnV: { id: 6, gguf: 'blk.{L}.attn_v.weight', dims: ['dim', 'kvDim'] },
  attnOutput: { id: 7, gguf: 'blk.{L}.attn_output.weight', dims: ['qDim', 'dim'] },
  ffnNorm: { id: 8, gguf: 'blk.{L}.ffn_norm.weight', dims: ['dim'] },
  ffnGate: { id: 9, gguf: 'blk.{L}.ffn_gate.weight', dims: ['dim', 'ffn'] },
  ffnUp: { id: 10, gguf: 'blk.{L}.ffn_up.weight', dims: ['dim', 'ffn'] },
  ffnDown: { id: 11, gguf: 'blk.{L}.ffn_down.weight', dims: ['ffn', 'dim'] },
  ropeFreqs: { id: 12, gguf: 'rope_freqs.weight', dims: ['ropePairs'], f32Only: true },
  attnQBias: { id: 13, gguf: 'blk.{L}.attn_q.bias', dims: ['qDim'] },
  attnKBias: { id: 14, gguf: 'blk.{L}.attn_k.bias', dims: ['kvDim'] },
  attnVBias: { id: 15, gguf: 'blk.{L}.attn_v.bias', dims: ['kvDim'] },
  attnQNorm: { id: 16, gguf: 'blk.{L}.attn_q_norm.weight', dims: ['headDim'] },
  attnKNorm: { id: 17, gguf: 'blk.{L}.attn_k_norm.weight', dims: ['headDim'] },
  attnPostNorm: { id: 18, gguf: 'blk.{L}.post_attention_norm.weight', dims: ['dim'] },
  ffnPostNorm: { id: 19, gguf: 'blk.{L}.post_ffw_norm.weight', dims: ['dim'] },
} as const satisfies Record<string, TensorKindSpec>;

export type TensorKindName = keyof typeof TENSOR_KINDS;

/** A kind's spec, typed loosely enough to read its optional fields. */
export function tensorKind(kind: TensorKindName): TensorKindSpec {
  return TENSOR_KINDS[kind];
}

/** Kind ids by name: `TensorKind.attnQ` is 4. */
export const TensorKind = Object.fromEntries(Object.entries(TENSOR_KINDS).map(([name, k]) => [name, k.id])) as {
  readonly [K in TensorKindName]: (typeof TENSOR_KINDS)[K]['id'];
};

/** Whether a kind exists once per model rather than once per layer. */
export function isGlobalKind(kind: TensorKindName): boolean {
  return !TENSOR_KINDS[kind].gguf.includes('{L}');
}

/**
 * A recycle head's tensors besides its layers (names under `recycle.`): its final norm, and its projection
 * (dim × 2·dim), which takes kind 0: the head has no embedding of its own, and no output matrix (kind 2): it
 * uses the base's.
 */
export const RECYCLE_GLOBAL_KINDS: Readonly<Record<string, number>> = { 'proj.weight': 0, 'output_norm.weight': TENSOR_KINDS.outputNorm.id };

/** The per-layer kinds of a plain llama stack (a recycle head has exactly these). */
export const LLAMA_LAYER_KINDS = ['attnNorm', 'attnQ', 'attnK', 'attnV', 'attnOutput', 'ffnNorm', 'ffnGate', 'ffnUp', 'ffnDown'] as const satisfies readonly TensorKindName[];

export type Presence = 'required' | 'optional';

export interface ArchitectureSpec {
  /** `general.architecture`. */
  name: string;
  /** Models that ship in it, for messages and docs. */
  examples: string;
  /** RoPE rotates adjacent pairs (llama.cpp's NORM) or the two halves of the rotated dims (NEOX). */
  rope: 'normal' | 'neox';
  /** The feed-forward gate's activation: down(act(gate·x) ⊙ up·x). */
  ffnActivation: 'silu' | 'gelu-tanh';
  /** Input embeddings multiplied by √dim. */
  scaleEmbedding: boolean;
  /** The attention scale multiplies the queries (after RoPE) instead of the scores, as llama.cpp's Gemma graphs do. */
  scaleQueries: boolean;
  /**
   * The attention scale 1/√d: d = head_dim, or llama.cpp's Gemma 3 rule (n_embd / n_head for the 27B model,
   * recognised by its 62 layers, as gemma_pytorch does; head_dim otherwise).
   */
  attentionScale: 'head_dim' | 'gemma3';
  /**
   * Interleaved sliding-window layers when `attention.sliding_window` is set: of every `pattern` layers (metadata
   * `attention.sliding_window_pattern`, else this default) all but the last attend through the window, with their
   * own RoPE base (`rope.freq_base_swa`, default 10000) and no frequency scaling.
   */
  slidingWindow?: { defaultPattern: number };
  /** The tensors of a model, beyond these every name is refused. Unlisted kinds are absent. */
  tensors: Partial<Record<TensorKindName, Presence>>;
  /** Metadata keys under `<name>.` this architecture reads beyond HYPERPARAMETER_KEYS. */
  keys: readonly string[];
}

/** What every supported architecture has: llama's tensors, optional output (else tied to token_embd) and Q/K/V biases. */
const LLAMA_TENSORS = {
  tokenEmbd: 'required',
  outputNorm: 'required',
  output: 'optional',
  attnNorm: 'required',
  attnQ: 'required',
  attnK: 'required',
  attnV: 'required',
  attnQBias: 'optional',
  attnKBias: 'optional',
  attnVBias: 'optional',
  attnOutput: 'required',
  ffnNorm: 'required',
  ffnGate: 'required',
  ffnUp: 'required',
  ffnDown: 'required',
} as const satisfies Partial<Record<TensorKindName, Presence>>;

const PLAIN = { ffnActivation: 'silu', scaleEmbedding: false, scaleQueries: false, attentionScale: 'head_dim', keys: [] } as const;

export const ARCHITECTURES = {
  llama: {
    ...PLAIN,
    name: 'llama',
    examples: 'Llama 2/3.x, SmolLM2, TinyLlama, Mistral 7B',
    rope: 'normal',
    tensors: { ...LLAMA_TENSORS, ropeFreqs: 'optional' },
  },
  qwen2: {
    ...PLAIN,
    name: 'qwen2',
    examples: 'Qwen2, Qwen2.5',
    rope: 'neox',
    tensors: LLAMA_TENSORS,
  },
  qwen3: {
    ...PLAIN,
    name: 'qwen3',
    examples: 'Qwen3',
    rope: 'neox',
    tensors: { ...LLAMA_TENSORS, attnQNorm: 'required', attnKNorm: 'required' },
  },
  gemma3: {
    name: 'gemma3',
    examples: 'Gemma 3 (270M, 1B, 4B, 12B, 27B text)',
    rope: 'neox',
    ffnActivation: 'gelu-tanh',
    scaleEmbedding: true,
    scaleQueries: true,
    attentionScale: 'gemma3',
    slidingWindow: { defaultPattern: 6 },
    tensors: { ...LLAMA_TENSORS, attnQNorm: 'required', attnKNorm: 'required', attnPostNorm: 'required', ffnPostNorm: 'required' },
    keys: ['attention.sliding_window', 'attention.sliding_window_pattern', 'rope.freq_base_swa', 'final_logit_softcapping'],
  },
} as const satisfies Record<string, ArchitectureSpec>;

export type ArchitectureName = keyof typeof ARCHITECTURES;

export const ARCHITECTURE_NAMES = Object.keys(ARCHITECTURES) as ArchitectureName[];

export function isArchitecture(name: string): name is ArchitectureName {
  return Object.prototype.hasOwnProperty.call(ARCHITECTURES, name);
}

/** The spec of a supported architecture, typed loosely enough to read its optional fields. */
export function architecture(name: ArchitectureName): ArchitectureSpec {
  return ARCHITECTURES[name];
}

/**
 * Hyperparameter keys (under `<arch>.`) every architecture reads, as llama.cpp does. Any other key under the
 * architecture's prefix that is not in the architecture's own `keys` or in IGNORED_KEYS is an option this engine
 * does not implement, and the file is refused naming it.
 */
export const HYPERPARAMETER_KEYS = [
  'context_length',
  'embedding_length',
  'block_count',
  'feed_forward_length',
  'attention.head_count',
  'attention.head_count_kv',
  'attention.key_length',
  'attention.value_length',
  'attention.layer_norm_rms_epsilon',
  'rope.dimension_count',
  'rope.freq_base',
  'rope.scaling.type',
  'rope.scaling.factor',
  'rope.scale_linear',
  'rope.scaling.attn_factor',
  'rope.scaling.original_context_length',
  // llama.cpp reads none of these for the four architectures: accepted only at the values it uses instead.
  'rope.scaling.yarn_ext_factor',
  'rope.scaling.yarn_beta_fast',
  'rope.scaling.yarn_beta_slow',
] as const;

/** Keys that say nothing the forward pass depends on (informational, or 0 meaning "none"). */
export const IGNORED_KEYS = ['vocab_size', 'rope.scaling.finetuned', 'pooling_type', 'expert_count', 'expert_used_count'] as const;

/** What llama.cpp uses for the YaRN keys it does not read (a file must agree or is refused). */
export const YARN_DEFAULTS: Readonly<Record<string, number>> = {
  'rope.scaling.yarn_ext_factor': 1,
  'rope.scaling.yarn_beta_fast': 32,
  'rope.scaling.yarn_beta_slow': 1,
};
