/**
 * Embeddings: each input runs through the model from position 0 in passes of the backend's batch, and the final
 * hidden states of its tokens (after the model's final norm: the engine's `rg_hidden`, llama.cpp's `result_norm`
 * that its embeddings read) are pooled and L2-normalised as llama.cpp's embeddings are.
 *
 * The passes use the model's one KV cache, as generations do, so they take the same turn. They overwrite its
 * entries from position 0 on: afterwards the prefix cache keeps only what every input left as it was (an input
 * that repeats the cached tokens' beginning leaves it whole), and the next generation runs the rest again.
 */
import type { Backend } from './backend.js';
import type { Context } from './decode/context.js';
import { ContextFullError, InvalidArgumentError, RecycleGPTError } from './errors.js';
import type { GGUFMetadata } from './gguf/types.js';
import type { Tokenizer } from './tokenizer/types.js';
import type { EmbedInput, EmbedOptions, EmbeddingRun, Embeddings, Pooling } from './types.js';

/** llama.cpp's `enum llama_pooling_type`, the numbers `<arch>.pooling_type` holds (none 0 and rank 4 aside). */
const POOLING_TYPES: Readonly<Record<number, Pooling>> = { 1: 'mean', 2: 'cls', 3: 'last' };
const POOLINGS: readonly Pooling[] = ['mean', 'cls', 'last'];

/**
 * The pooling a GGUF asks for. Chat models carry no `<arch>.pooling_type` (or 0, llama.cpp's "none", which gives a
 * vector per token): mean pooling then. Undefined for what embed() does not run (4: a reranker's score head).
 */
export function filePooling(metadata: GGUFMetadata, architecture: string): Pooling | undefined {
  const value = metadata[`${architecture}.pooling_type`];
  if (value === undefined || value === 0) return 'mean';
  return typeof value === 'number' ? POOLING_TYPES[value] : undefined;
}

/** An embedding's checked settings: the token ids of every input, and how to pool them. */
export interface EmbedPlan {
  inputs: number[][];
  pooling: Pooling;
  normalize: boolean;
  truncated: number[];
}

/** What planning needs to know about the model. */
export interface EmbedModel {
  tokenizer: Tokenizer;
  vocabSize: number;
  contextLength: number;
  /** The file's pooling (ModelInfo.pooling). */
  pooling: Pooling | undefined;
  /** Whether the backend gives hidden states back (the WASM engine does; WebGPU does not yet). */
  hasHidden: boolean;
  backend: string;
}

/** Checks `input` and `options` against the model; throws the error the caller should see, before anything runs. */
export function planEmbedding(input: EmbedInput, options: EmbedOptions, model: EmbedModel): EmbedPlan {
  if (!model.hasHidden) {
    throw new RecycleGPTError('ENGINE', `embed() runs on the WebAssembly backend; this model runs on ${model.backend}. Load it with backend: 'wasm' to embed`);
  }
  const pooling = checkPooling(options.pooling, model.pooling);
  if (options.normalize !== undefined && typeof options.normalize !== 'boolean') throw new InvalidArgumentError(`normalize must be true or false, got ${String(options.normalize)}`);
  if (options.truncate !== undefined && options.truncate !== 'error' && options.truncate !== 'end') {
    throw new InvalidArgumentError(`truncate must be 'error' or 'end', got ${String(options.truncate)}`);
  }
  const addSpecial = options.addSpecial ?? true;
  const truncated: number[] = [];
  const inputs = splitInputs(input).map((item, i) => {
    const ids = typeof item === 'string' ? model.tokenizer.encode(item, { addSpecial, parseSpecial: false }) : checkIds(item, i, model.vocabSize);
    if (ids.length === 0) throw new InvalidArgumentError(`input ${i} has no tokens; give it some text`);
    if (ids.length <= model.contextLength) return ids;
    if (options.truncate !== 'end') {
      throw new ContextFullError(ids.length, model.contextLength, `input ${i} is too long: pass truncate: 'end' to cut it, or load the model with a larger contextLength`);
    }
    truncated.push(i);
    // The end-of-sequence token a model appends marks where its pooled state is read (last pooling): keep it last.
    const eos = typeof item === 'string' && addSpecial && model.tokenizer.addEos ? ids.at(-1)! : undefined;
    return eos === undefined ? ids.slice(0, model.contextLength) : [...ids.slice(0, model.contextLength - 1), eos];
  });
  return { inputs, pooling, normalize: options.normalize ?? true, truncated };
}

function checkPooling(asked: Pooling | undefined, fromFile: Pooling | undefined): Pooling {
  if (asked !== undefined && !POOLINGS.includes(asked)) throw new InvalidArgumentError(`pooling must be 'mean', 'cls' or 'last', got ${String(asked)}`);
  const pooling = asked ?? fromFile;
  if (pooling === undefined) {
    throw new InvalidArgumentError(
      "this model's GGUF asks for a pooling embed() does not run (its <arch>.pooling_type is not 0–3; 4 is a reranker's score head); pass pooling: 'mean', 'cls' or 'last'",
    );
  }
  return pooling;
}

/** A string, one array of token ids, or a list of either. */
function splitInputs(input: EmbedInput): (string | number[])[] {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input)) throw new InvalidArgumentError(`embed() takes a string, an array of token ids, or an array of those; got ${typeof input}`);
  if (input.length === 0) throw new InvalidArgumentError('embed() got no inputs: give a string or a non-empty array');
  if (input.every((item) => typeof item === 'number')) return [input as number[]];
  return input.map((item, i) => {
    if (typeof item === 'string' || Array.isArray(item)) return item;
    throw new InvalidArgumentError(`input ${i} is ${typeof item}: give strings or arrays of token ids (one array of numbers is one input)`);
  });
}

function checkIds(ids: number[], index: number, vocabSize: number): number[] {
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new InvalidArgumentError(`input ${index} has token id ${String(id)}, out of range: the vocabulary has ${vocabSize} tokens`);
    }
  }
  return [...ids];
}

/** A backend that gives back hidden states. */
type HiddenBackend = Backend & { hidden(row?: number): Float32Array };

/** Runs a checked plan on the model's context (the caller holds the model's turn). */
export async function embed(context: Context, plan: EmbedPlan, signal?: AbortSignal): Promise<Embeddings> {
  const llama = context.llama as HiddenBackend;
  const vectors: Float32Array[] = [];
  let kept = context.cached.length;
  try {
    for (const ids of plan.inputs) {
      // The first token's state depends on it alone (causal attention): CLS pooling needs one position.
      const run = plan.pooling === 'cls' ? ids.slice(0, 1) : ids;
      kept = Math.min(kept, keptAfter(context.cached, run));
      const vector = await pooledState(llama, run, plan.pooling, signal);
      if (plan.normalize) normalizeL2(vector);
      vectors.push(vector);
    }
  } finally {
    context.cached.length = kept;
    context.headCached = Math.min(context.headCached, kept);
  }
  return { vectors, inputTokens: plan.inputs.map((ids) => ids.length), pooling: plan.pooling, normalized: plan.normalize, truncated: plan.truncated };
}

/** Cached tokens still valid after passes over `ids` from position 0: all of them when `ids` repeats their start. */
function keptAfter(cached: number[], ids: number[]): number {
  let same = 0;
  while (same < cached.length && same < ids.length && cached[same] === ids[same]) same++;
  return same === ids.length ? cached.length : same;
}

async function pooledState(llama: HiddenBackend, ids: number[], pooling: Pooling, signal: AbortSignal | undefined): Promise<Float32Array> {
  const { maxBatch, dim } = llama.config;
  const sum = new Float64Array(dim);
  let picked: Float32Array | undefined;
  for (let start = 0; start < ids.length; start += maxBatch) {
    if (signal?.aborted) throw new RecycleGPTError('ABORTED', 'embed() was aborted by its signal');
    const chunk = ids.slice(start, start + maxBatch);
    // No logits: the hidden rows are all that is read.
    await llama.forward(chunk, start, chunk.length);
    if (pooling === 'mean') {
      for (let r = 0; r < chunk.length; r++) {
        const row = llama.hidden(r);
        for (let j = 0; j < dim; j++) sum[j] += row[j]!;
      }
    } else if (start + chunk.length === ids.length) {
      // cls ran its first token alone; last reads the final row.
      picked = llama.hidden(chunk.length - 1).slice();
    }
    // Hand the event loop back between passes (abort signals, other requests' sockets).
    await macrotask();
  }
  return picked ?? Float32Array.from(sum, (s) => s / ids.length);
}

/** Divides by the Euclidean norm as llama.cpp's common_embd_normalize does (f64 sum, f32 factor); zero stays zero. */
export function normalizeL2(vector: Float32Array): void {
  let squares = 0;
  for (const x of vector) squares += x * x;
  const norm = Math.sqrt(squares);
  const scale = norm > 0 ? Math.fround(1 / norm) : 0;
  for (let i = 0; i < vector.length; i++) vector[i] = vector[i]! * scale;
}

/** The run `embed()` returns: nothing happens until it is awaited, then `run` starts once. */
export function embeddingRun(plan: EmbedPlan, run: () => Promise<Embeddings>): EmbeddingRun {
  let started: Promise<Embeddings> | undefined;
  return {
    inputTokens: plan.inputs.map((ids) => ids.length),
    then: (onFulfilled, onRejected) => (started ??= run()).then(onFulfilled, onRejected),
  };
}

const macrotask: () => Promise<void> =
  typeof setImmediate === 'function' ? () => new Promise((resolve) => setImmediate(resolve)) : () => new Promise((resolve) => setTimeout(resolve, 0));
