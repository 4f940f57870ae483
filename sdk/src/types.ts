import type { EngineModules, EngineSource } from './binding.js';
import type { BackendChoice, BackendName, DecodeMode, KernelChoice, KernelSet } from './contract/modes.js';
import type { CachedModel, CacheOption, CacheOptions, CacheReport, CacheStoreName } from './gguf/cache.js';
import type { ModelSource } from './gguf/source.js';
import type { JsonSchema, ResponseFormat } from './grammar/index.js';
import type { Tokenizer } from './tokenizer/types.js';

export type { BackendChoice, BackendName, EngineModules, EngineSource, KernelChoice, KernelSet, CachedModel, CacheOption, CacheOptions, CacheReport, CacheStoreName, DecodeMode, JsonSchema, ModelSource, ResponseFormat, Tokenizer };

export interface LoadProgress {
  loaded: number;
  total?: number;
  /** What is loading now: the base model or the recycle head. */
  phase: 'model' | 'recycle';
  /** With the `cache` option: where these bytes come from, the browser's store or the network. */
  from?: 'cache' | 'network';
}

export interface LoadOptions {
  /**
   * The WebAssembly engine. The SDK ships two modules computing the same bits: `recyclegpt-relaxed.wasm` (relaxed-SIMD
   * kernels, faster; workerd, Chrome) and `recyclegpt.wasm` (SIMD128, every host). Pass both as `{ relaxed, simd128 }`
   * (each a compiled module, its bytes, or where to fetch it) and the SDK runs the relaxed one where the host
   * runs its kernels exactly, else the other; a single module runs as it is. Cloudflare Workers cannot compile at run
   * time: import both at bundle time and pass them. Default: both files shipped with the SDK, each compiled once.
   */
  wasm?: EngineSource | EngineModules;
  /**
   * Which of those modules runs (WASM backend): 'auto' (default) as above; 'relaxed' or 'simd128' that one, or an
   * ENGINE error that says why it cannot run here. `ModelInfo.kernels` says which ran.
   */
  kernels?: KernelChoice;
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
   * KV sequences to keep, each a cached conversation: a prompt that extends one continues there, any other starts in
   * the least recently used one, taking the longest common prefix any sequence holds (a shared system prompt is copied,
   * not run again). So turn n+1 of a conversation runs only its new tokens even when others ran in between. Each costs
   * `ModelInfo.kvBytesPerSequence` of memory. Default: as many as fit 32 MiB of KV cache (counted at the cache's
   * precision, base only), from 1 to 4, and fewer where `memoryLimit` leaves no room for them. The WebGPU backend keeps one.
   */
  sequences?: number;
  /**
   * Bytes of WebAssembly memory the model may take (weights, KV caches, scratch; the recycle head not counted).
   * Default: wasm32's 4 GiB. A file that needs more is refused with `OUT_OF_MEMORY` and the sizes, before any weight
   * is read: a Cloudflare Worker sets its isolate's limit here (128 MB, less what the JS heap needs).
   */
  memoryLimit?: number;
  /**
   * Tokens the recycle head scores. A head file may list the likeliest tokens (`recycle.shortlist`, written by
   * training/shortlist.ts): by default the head scores only those, which cuts its cost (its output matrix is most of
   * it at 49k–151k vocabularies); a number keeps the first n of the list, `false` scores the whole vocabulary. Only
   * acceptance changes in `exact`/`chain` (their output stays that of `off`); `fast`, which keeps guesses unchecked, guesses
   * listed tokens only. The WebGPU backend scores the whole vocabulary.
   */
  recycleShortlist?: number | false;
  /**
   * Where the model runs (default 'wasm'). 'webgpu' needs a WebGPU adapter (navigator.gpu); 'auto' takes WebGPU when
   * there is one and the model fits its buffer limits, else WebAssembly. See `ModelInfo.backend` for the outcome.
   * WebGPU computes activations in f32 where WebAssembly quantizes them as llama.cpp does, so their tokens may differ at near ties.
   */
  backend?: BackendChoice;
  /**
   * Browsers, for a model loaded from an http(s) URL: keep the file in the Origin Private File System ('opfs') or the
   * Cache API ('cache-api') as it downloads, and read it from there on later loads (see CacheOptions for resuming,
   * keys and quota). Where the store is missing (Node, Workers) the model loads without it; `model.info.cache` says
   * what happened. Not applied to the recycle head.
   */
  cache?: CacheOption;
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
  /** KV sequences kept: conversations whose prompts stay cached (see `LoadOptions.sequences`). */
  sequences: number;
  /** Bytes of KV cache each sequence takes, the recycle head's included. */
  kvBytesPerSequence: number;
  tokenizer: 'llama' | 'gpt2';
  chatTemplate?: string;
  hasRecycleHead: boolean;
  /** Tokens the recycle head scores when it scores a shortlist (`LoadOptions.recycleShortlist`); else undefined. */
  recycleShortlist?: number;
  /** The backend the model runs on. */
  backend: BackendName;
  /** Why that backend: 'asked for', 'WebGPU adapter found', or what ruled WebGPU out (e.g. 'no navigator.gpu'). */
  backendReason: string;
  /** WASM backend: the engine module's kernels ('relaxed' runs relaxed-SIMD quantized kernels; both give the same bits). */
  kernels?: KernelSet;
  /**
   * Why those kernels: 'asked for', 'the only module given', 'relaxed SIMD runs exactly here', or what ruled the
   * relaxed module out (e.g. the host cannot compile it).
   */
  kernelsReason?: string;
  /** With the `cache` load option: whether the file came from the store, was kept there, or why not. */
  cache?: CacheReport;
  /**
   * How `embed()` pools by default: the GGUF's `<arch>.pooling_type` (llama.cpp's numbers: 1 mean, 2 cls, 3 last);
   * 'mean' where the file has none or 0 (chat models). Undefined where it names a pooling `embed()` does not run
   * (4, a reranker's rank): `embed()` then needs the `pooling` option.
   */
  pooling?: Pooling;
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
   * `draftLength`: drafts per pass in `chain` mode (2–8, default 3).
   * `jumpForward` (with a `responseFormat`, default true): where the format dictates the next text (a key, the
   * punctuation around it, the rest of an enum value), draft its tokens and verify them in the next batched pass, as
   * the recycle head's drafts are, in every mode (`off` too: no head needed); `fast` keeps them unchecked, as it keeps
   * the head's. The output is the same either way.
   * `adaptive` (default true; exact/chain, and jump-forward outside `fast`): measure once what a batched pass costs on
   * this backend, and draft only while, over this model's generations so far, drafting has produced tokens faster
   * than plain passes would; grammar drafts are cut to the count that pays best, or none (the output is the same
   * either way).
   */
  decode?: { mode: DecodeMode; draftLength?: number; adaptive?: boolean; jumpForward?: boolean };
  /**
   * Constrain the output to a format: `{ type: 'json_object' }` (any JSON object), `{ type: 'json_schema', schema }`
   * (JSON valid against the schema; `strict` and `name` are accepted as OpenAI sends them, the schema is always
   * enforced), `{ type: 'grammar', grammar, root? }` (a llama.cpp GBNF grammar), or `{ type: 'text' }` (none).
   * Every token is picked among those the format allows (in every decode mode and sampling setting), so the output
   * parses and validates unless `maxTokens` or a `stop` string cuts it; as `maxTokens` runs out, only tokens on a
   * shortest completion are allowed, so a format that can close in the tokens left does. End-of-generation is
   * allowed only where the format can end, and the generation ends without another pass where nothing else can
   * follow. Schema features the engine cannot enforce throw `UnsupportedParameterError` (naming the keyword's JSON
   * pointer in `parameter`) at the call; a malformed schema or grammar throws `InvalidArgumentError`.
   */
  responseFormat?: ResponseFormat;
  /** Add BOS/EOS as the model's metadata says (default true for text prompts). */
  addSpecial?: boolean;
  /** Parse special-token text such as "<s>" in the prompt (default false). */
  parseSpecial?: boolean;
  /**
   * Report each token's log-probability and this many most likely alternatives (0–20), from the full model's
   * distribution before any sampling filter (temperature 1, as OpenAI reports them). Not in `fast` mode, whose
   * recycled tokens the full model never scores. Passes then read back whole rows of logits.
   */
  logprobs?: number;
}

/** `abort`: the signal fired, or the caller stopped iterating. */
export type FinishReason = 'stop' | 'length' | 'abort';

/**
 * Where a token came from: picked from a full pass's row, the recycle head's guess, or text the `responseFormat`
 * dictated (jump-forward); guesses and dictated text are kept by the check in `off`/`exact`/`chain`.
 */
export type TokenSource = 'pass' | 'recycled' | 'grammar';

/**
 * Which part of a chat answer a token belongs to: the answer, a reasoning block (`<think>…</think>`), or, with
 * `tools`, the markup of a tool call (read into `toolCalls`, not part of the answer's text).
 */
export type Channel = 'content' | 'reasoning' | 'tool';

export interface TokenLogprob {
  id: number;
  /** Natural log of the token's probability. */
  logprob: number;
}

export interface GeneratedToken {
  id: number;
  /** The text this token completes (may be '' while a multi-byte character is split across tokens). */
  text: string;
  source: TokenSource;
  /** With `logprobs`: this token's log-probability. */
  logprob?: number;
  /** With `logprobs`: the `logprobs` most likely tokens at this position, most likely first. */
  topLogprobs?: TokenLogprob[];
  /**
   * From `chat()` with reasoning 'separate' (the default) on a vocabulary that has the `<think>` and `</think>` tokens:
   * the channel. The markers themselves give no text and count as reasoning.
   */
  channel?: Channel;
  /**
   * From `chat()` with `tools`: the pieces of tool calls this token completes, as OpenAI streams them (the first
   * piece of a call has its `index`, `id`, `type` and `function.name`; later ones add `function.arguments` text).
   */
  toolCalls?: ToolCallDelta[];
}

/** A piece of a tool call in a stream; the `arguments` pieces of one `index`, joined, are the call's JSON arguments. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function: { name?: string; arguments?: string };
}

export interface GenerationStats {
  promptTokens: number;
  /** Prompt tokens whose KV entries were reused from the previous generation (a common prefix) instead of run again. */
  reusedPromptTokens: number;
  generatedTokens: number;
  /**
   * Whether the times below were measured. 'unmeasured' where the clock stands still while code runs (inside
   * production Cloudflare Workers, `performance.now()` moves only at I/O): times and rates are then 0, not wrong.
   */
  timing: 'measured' | 'unmeasured';
  prefillMs: number;
  decodeMs: number;
  /** Prompt tokens run (not reused) per second. */
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
  /**
   * Adaptive exact/chain (and jump-forward): how what drafting costs was found: 'measured' (timed passes), or
   * 'modeled' (counted from the model's shapes and types where the clock stands still, as in production Workers).
   */
  draftCost?: 'measured' | 'modeled';
  /** With a `responseFormat`: tokens of the text it dictated that were drafted (jump-forward), and those kept. */
  grammarDrafted?: number;
  grammarKept?: number;
}

export interface TextPart {
  type: 'text';
  text: string;
}

/** A tool call an assistant message made (OpenAI's shape); `arguments` is a JSON string or an object. */
export interface ToolCall {
  id?: string;
  type?: 'function';
  function: { name: string; arguments: string | Record<string, unknown> };
}

/** A tool call the model made: `arguments` is a JSON object's text. */
export interface CompletedToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/**
 * Whether the model may call the tools: 'auto' (default: it may; calls it writes are read out), 'none' (the tools are
 * not offered), 'required' (the answer is a call of one of them) or one named function (a call of that one).
 */
export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

/** A tool the model may call, as chat templates that take `tools` render it (OpenAI's shape). */
export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export interface ChatMessage {
  /** `developer` is OpenAI's newer name for `system`; templates see it as `system`. */
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  /** Text, or text parts (joined by newlines); null only in an assistant message with tool calls. */
  content: string | null | TextPart[];
  toolCalls?: ToolCall[];
  /** In a `tool` message: the call it answers. */
  toolCallId?: string;
  name?: string;
}

/** `addSpecial`/`parseSpecial` do not apply: a rendered chat prompt always parses its template's special tokens. */
export interface ChatOptions extends Omit<GenerateOptions, 'addSpecial' | 'parseSpecial'> {
  /** Further variables for the model's chat template, e.g. `{ enable_thinking: false }` for Qwen3. */
  templateOptions?: Record<string, unknown>;
  /**
   * Tools the model may call, rendered by the model's own template (a template without tool support gets them
   * described in the system message). Calls in the answer are read in the template family's syntax (Qwen's and
   * Hermes' `<tool_call>`, Llama 3's JSON) into tokens' `toolCalls`; with `toolChoice` 'required' or a named function
   * the answer is constrained to a call whose arguments match the tool's `parameters` schema.
   */
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  /**
   * A conversation longer than the context: 'error' (default) throws CONTEXT_FULL; 'oldest' drops the oldest turns
   * (never system messages, never the last turn) until the prompt leaves room for `maxTokens`.
   */
  truncate?: 'error' | 'oldest';
  /**
   * 'separate' (default): tokens of a `<think>…</think>` block come with channel 'reasoning', the answer's with
   * 'content', and the markers give no text. 'inline': the block stays in the text. Needs a vocabulary with both tokens.
   * Under a `responseFormat` the answer is all content: the format applies from its first token.
   */
  reasoning?: 'separate' | 'inline';
}

/** A conversation as the model sees it. */
export interface RenderedChat {
  text: string;
  ids: number[];
  /** 'template': the GGUF's own chat template; else the fallback format used (the GGUF has no template this SDK can parse). */
  renderer: 'template' | 'chatml' | 'llama3' | 'llama2' | 'zephyr' | 'phi3' | 'gemma' | 'plain';
  /** Messages left out by `truncate: 'oldest'`. */
  droppedMessages: number;
}

export interface ChatCompletion {
  /** The answer. */
  content: string;
  /** The reasoning block's text, when the model wrote one (reasoning 'separate'). */
  reasoning?: string;
  /** The tool calls the answer made (with `tools`). */
  toolCalls?: CompletedToolCall[];
  tokens: number[];
  /** 'tool_calls' where the answer made tool calls and ended by itself. */
  finishReason: FinishReason | 'tool_calls';
  stats: GenerationStats;
}

export interface Completion {
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  stats: GenerationStats;
}

/** An async iterable of tokens; `stats` resolves when the generation ends. */
export interface TokenStream extends AsyncIterable<GeneratedToken> {
  /** The prompt's length in tokens (for a chat, as rendered), known at the call: a server can check its limits before iterating. */
  readonly promptTokens: number;
  readonly stats: Promise<GenerationStats>;
}

export interface Model {
  readonly info: ModelInfo;
  readonly tokenizer: Tokenizer;
  tokenize(text: string, options?: { addSpecial?: boolean; parseSpecial?: boolean }): number[];
  detokenize(ids: ArrayLike<number>): string;
  /**
   * Streams generated tokens. Generations on one model run one at a time; later callers wait their turn.
   * Every error the caller can cause (options, token ids, a prompt longer than the context, a decode mode without a
   * recycle head) is thrown here, before anything streams.
   */
  generate(prompt: string | number[], options?: GenerateOptions): TokenStream;
  complete(prompt: string | number[], options?: GenerateOptions): Promise<Completion>;
  /**
   * Streams the assistant's answer to `messages`, rendered by the model's own chat template; stops at its
   * end-of-turn tokens. Same streaming, stats and decode modes as `generate`; every error the caller can cause
   * (messages, options, a conversation longer than the context) is thrown here, before anything streams.
   */
  chat(messages: ChatMessage[], options?: ChatOptions): TokenStream;
  /** `chat`, collected: the answer, and the reasoning apart from it. */
  completeChat(messages: ChatMessage[], options?: ChatOptions): Promise<ChatCompletion>;
  /** The prompt `chat` would run for these messages and options (text and token ids), without running it. */
  renderChat(messages: ChatMessage[], options?: ChatOptions): RenderedChat;
  /** Logits of every position of `ids` from a fresh context (tests, scoring). */
  evaluate(ids: number[]): Promise<Float32Array[]>;
  /**
   * One vector per input from the model's final hidden states, pooled and L2-normalised (see EmbedOptions). Every
   * error the caller can cause is thrown here; the work runs when the result is awaited, in its turn with generations.
   */
  embed(input: EmbedInput, options?: EmbedOptions): EmbeddingRun;
  /** Frees the WASM memory (or GPU buffers); the model is unusable afterwards. */
  dispose(): void;
}

// --- embeddings ----------------------------------------------------------------------------------------

/**
 * How the final hidden states of an input's tokens (after the model's final norm, as llama.cpp's embeddings take
 * them) become one vector: their mean, the first token's ('cls'), or the last token's.
 */
export type Pooling = 'mean' | 'cls' | 'last';

/** A text, token ids (run as given: no BOS/EOS added), or a list of either: one vector each. */
export type EmbedInput = string | number[] | (string | number[])[];

export interface EmbedOptions {
  /** Default: the model's (`info.pooling`, from the GGUF's `<arch>.pooling_type`; mean where it has none). */
  pooling?: Pooling;
  /** Scale each vector to unit length (default true), as llama.cpp's embedding tool and server do; false: the pooled state as it is. */
  normalize?: boolean;
  /**
   * An input longer than the context: 'error' (default) throws CONTEXT_FULL; 'end' drops tokens from its end
   * (an end-of-sequence token the model appends stays last).
   */
  truncate?: 'error' | 'end';
  /** Texts get BOS/EOS as the model's metadata says (default true), as llama.cpp's embeddings add them. */
  addSpecial?: boolean;
  /** Stops between passes; the run then rejects with ABORTED. */
  signal?: AbortSignal;
}

export interface Embeddings {
  /** One vector of `info.dim` values per input, in input order. */
  vectors: Float32Array[];
  /** Tokens each input ran as (special tokens included, after truncation). */
  inputTokens: number[];
  pooling: Pooling;
  normalized: boolean;
  /** Indices of the inputs that `truncate: 'end'` shortened. */
  truncated: number[];
}

/** `embed()`'s answer: awaited, it runs (once) and gives the embeddings. */
export interface EmbeddingRun extends PromiseLike<Embeddings> {
  /** Tokens each input will run as, known at the call: a server can check its limits before awaiting. */
  readonly inputTokens: readonly number[];
}
