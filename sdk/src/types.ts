import type { BackendChoice, BackendName, DecodeMode } from './contract/modes.js';
import type { ModelSource } from './gguf/source.js';
import type { Tokenizer } from './tokenizer/types.js';

export type { BackendChoice, BackendName, DecodeMode, ModelSource, Tokenizer };

export interface LoadProgress {
  loaded: number;
  total?: number;
  /** What is loading now: the base model or the recycle head. */
  phase: 'model' | 'recycle';
}

export interface LoadOptions {
  /** The engine: a compiled module (Workers import it at bundle time), its bytes, or where to fetch it. Default: the copy shipped with the SDK. */
  wasm?: WebAssembly.Module | BufferSource | URL | string;
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
  /** KV cache capacity in tokens; default min(model's context length, 2048). */
  contextLength?: number;
  /**
   * KV cache precision; default 'f16' as llama.cpp's. On the WASM backend an f16 cache of at most 16 MiB keeps its
   * values widened in f32 (twice the bytes, the same numbers, faster attention); a larger one stores 2 bytes a value.
   */
  kvType?: 'f16' | 'f32';
  /** A recycle head sidecar GGUF for the fast/exact/chain decode modes. */
  recycle?: ModelSource;
  /**
   * Where the model runs (default 'wasm'). 'webgpu' needs a WebGPU adapter (navigator.gpu); 'auto' takes WebGPU when
   * there is one and the model fits its buffer limits, else WebAssembly. See `ModelInfo.backend` for the outcome.
   * WebGPU computes activations in f32 where WebAssembly quantizes them as llama.cpp does, so their tokens may differ at near ties.
   */
  backend?: BackendChoice;
}

export interface ModelInfo {
  architecture: string;
  name: string;
  parameters: number;
  /** ggml type names of the weights with their tensor counts, e.g. { Q8_0: 57, F32: 17 }. */
  tensorTypes: Record<string, number>;
  vocabSize: number;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffnDim: number;
  contextLength: number;
  tokenizer: 'llama' | 'gpt2';
  chatTemplate?: string;
  hasRecycleHead: boolean;
  /** The backend the model runs on. */
  backend: BackendName;
  /** Why that backend: 'asked for', 'WebGPU adapter found', or what ruled WebGPU out (e.g. 'no navigator.gpu'). */
  backendReason: string;
}

export interface SamplingOptions {
  /** 0 = greedy (default 0.8). */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  /** How many recent tokens the repetition penalty looks at (default 64). */
  repeatLastN?: number;
  seed?: number;
}

export interface GenerateOptions extends SamplingOptions {
  maxTokens?: number;
  /** Generation stops before any of these strings; they are not part of the output. */
  stop?: string[];
  signal?: AbortSignal;
  /**
   * `draftLength`: drafts per pass in `chain` mode (2–8, default 3). `adaptive` (exact/chain, default true):
   * measure once what drafting costs on this backend, and draft only while, over this model's generations so far,
   * drafting has produced tokens faster than plain passes would (the output is the same either way).
   */
  decode?: { mode: DecodeMode; draftLength?: number; adaptive?: boolean };
  /** Add BOS/EOS as the model's metadata says (default true for text prompts). */
  addSpecial?: boolean;
  /** Parse special-token text such as "<s>" in the prompt (default false). */
  parseSpecial?: boolean;
}

/** `abort`: the signal fired, or the caller stopped iterating. */
export type FinishReason = 'stop' | 'length' | 'abort';

export interface GeneratedToken {
  id: number;
  /** The text this token completes (may be '' while a multi-byte character is split across tokens). */
  text: string;
}

export interface GenerationStats {
  promptTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  finishReason: FinishReason;
  decodeMode: DecodeMode;
  /** Full-model forward passes during decoding. */
  fullPasses: number;
  /** Tokens the recycle head proposed. */
  proposed: number;
  /** Tokens that came from the recycle head and were kept. */
  recycled: number;
  /** Recycled tokens kept / proposed (exact, chain); undefined when nothing was proposed. */
  acceptanceRate?: number;
  /** Decoded tokens per full forward pass (1 for `off`; up to 2 for `fast`/`exact`). */
  tokensPerPass?: number;
  /** Set when adaptive exact/chain decoding stopped drafting because it cost more than it saved. */
  draftingStopped?: true;
}

export interface Completion {
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  stats: GenerationStats;
}

/** An async iterable of tokens; `stats` resolves when the generation ends. */
export interface TokenStream extends AsyncIterable<GeneratedToken> {
  readonly stats: Promise<GenerationStats>;
}

export interface Model {
  readonly info: ModelInfo;
  readonly tokenizer: Tokenizer;
  tokenize(text: string, options?: { addSpecial?: boolean; parseSpecial?: boolean }): number[];
  detokenize(ids: ArrayLike<number>): string;
  /**
   * Streams generated tokens. Generations on one model run one at a time; later callers wait their turn.
   * Invalid options throw an InvalidArgumentError here, before anything streams.
   */
  generate(prompt: string | number[], options?: GenerateOptions): TokenStream;
  complete(prompt: string | number[], options?: GenerateOptions): Promise<Completion>;
  /** Logits of every position of `ids` from a fresh context (tests, scoring). */
  evaluate(ids: number[]): Promise<Float32Array[]>;
  /** Frees the WASM memory (or GPU buffers); the model is unusable afterwards. */
  dispose(): void;
}
