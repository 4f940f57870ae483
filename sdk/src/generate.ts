/** The decode loop: prefill, sample, stream text, stop. One generation at a time per KV cache. */
import type { WasmLlama } from './binding.js';
import { InvalidArgumentError, RecycleGPTError } from './errors.js';
import { Sampler } from './sampler.js';
import { StopMatcher } from './stop.js';
import { StreamingDecoder } from './tokenizer/stream.js';
import type { Tokenizer } from './tokenizer/types.js';
import type { FinishReason, GeneratedToken, GenerateOptions, GenerationStats } from './types.js';

/** The engine with what its KV cache holds, so a prompt that extends the last one reuses it. */
export class Context {
  /** Tokens whose K/V entries are in the cache, position by position. */
  cached: number[] = [];

  constructor(
    readonly llama: WasmLlama,
    readonly tokenizer: Tokenizer,
  ) {}

  get capacity(): number {
    return this.llama.config.contextLength;
  }

  /**
   * Runs the prompt through the model, reusing the cached prefix, and leaves the last token's logits.
   * With `allLogits`, returns a copy of every position's logits and reuses nothing.
   */
  prefill(ids: number[], allLogits = false): Float32Array[] {
    const { maxBatch, vocabSize } = this.llama.config;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new InvalidArgumentError(`token id ${id} is out of range: the vocabulary has ${vocabSize} tokens`);
      }
    }
    if (ids.length === 0) throw new InvalidArgumentError('the prompt is empty: give at least one token');
    if (ids.length > this.capacity) {
      throw new RecycleGPTError(
        'CONTEXT_FULL',
        `the prompt has ${ids.length} tokens but the context holds ${this.capacity}; shorten it or load the model with a larger contextLength`,
      );
    }
    // Keep at least the last token to run, since its logits are what comes next.
    let start = allLogits ? 0 : Math.min(commonPrefix(this.cached, ids), ids.length - 1);
    this.cached.length = start;
    const rows: Float32Array[] = [];
    while (start < ids.length) {
      const chunk = ids.slice(start, start + maxBatch);
      const last = start + chunk.length === ids.length;
      const logitsFrom = allLogits ? 0 : last ? chunk.length - 1 : chunk.length;
      this.llama.forward(chunk, start, logitsFrom);
      for (let r = 0; r < chunk.length - logitsFrom; r++) rows.push(this.llama.logits(r).slice(0, vocabSize));
      this.cached.push(...chunk);
      start += chunk.length;
    }
    return rows;
  }

  /** Appends one token and returns the logits for the next. */
  step(id: number): Float32Array {
    this.llama.forward([id], this.cached.length, 0);
    this.cached.push(id);
    return this.llama.logits(0);
  }
}

function commonPrefix(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

export function checkMaxTokens(maxTokens: number | undefined): number {
  const value = maxTokens ?? 256;
  if (!Number.isInteger(value) || value < 0) throw new InvalidArgumentError(`maxTokens must be a non-negative integer, got ${String(maxTokens)}`);
  return value;
}

// A long synchronous decode would starve the event loop (abort signals, other streams, socket writes):
// hand control back every few milliseconds. setImmediate where it exists (Node), else a zero timeout.
const YIELD_EVERY_MS = 8;
const macrotask: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise((resolve) => setImmediate(resolve))
    : () => new Promise((resolve) => setTimeout(resolve, 0));

/** Generates from `promptIds`, yielding tokens; returns the stats. */
export async function* decode(
  context: Context,
  promptIds: number[],
  options: GenerateOptions,
): AsyncGenerator<GeneratedToken, GenerationStats> {
  const maxTokens = checkMaxTokens(options.maxTokens);
  const mode = options.decode?.mode ?? 'off';
  if (mode !== 'off') {
    throw new RecycleGPTError('INVALID_ARGUMENT', `decode mode '${mode}' needs a recycle head; load one with the \`recycle\` option`);
  }
  const sampler = new Sampler(options);
  const stop = new StopMatcher(options.stop ?? []);
  const decoder = new StreamingDecoder(context.tokenizer);
  const history = [...promptIds];

  const t0 = now();
  // A caller that gave up while waiting for its turn gets no prefill.
  let logits = options.signal?.aborted ? new Float32Array(0) : context.prefill(promptIds)[0];
  const t1 = now();
  let generated = 0;
  let lastYield = t1;
  let finish: FinishReason = 'length';
  // Each token is yielded once the next is known, so text held back at the end (a stop-sequence
  // prefix that never completed, a split character) still reaches the caller with the last token.
  let previous: GeneratedToken | undefined;

  while (generated < maxTokens) {
    if (options.signal?.aborted) {
      finish = 'abort';
      break;
    }
    const id = sampler.sample(logits, history);
    if (context.tokenizer.isEog(id)) {
      finish = 'stop';
      break;
    }
    generated++;
    history.push(id);
    const { text, stopped } = stop.push(decoder.push(id));
    if (previous) yield previous;
    previous = { id, text };
    if (stopped) {
      finish = 'stop';
      break;
    }
    if (generated === maxTokens || context.cached.length >= context.capacity) break;
    logits = context.step(id);
    if (now() - lastYield > YIELD_EVERY_MS) {
      await macrotask();
      lastYield = now();
    }
  }
  if (previous) {
    if (!stop.stopped) previous.text += stop.flush(decoder.flush());
    yield previous;
  }
  const t2 = now();
  const decodePasses = Math.max(0, generated - 1);
  return {
    promptTokens: promptIds.length,
    generatedTokens: generated,
    prefillMs: t1 - t0,
    decodeMs: t2 - t1,
    prefillTokensPerSecond: rate(promptIds.length, t1 - t0),
    decodeTokensPerSecond: rate(decodePasses, t2 - t1),
    finishReason: finish,
    decodeMode: mode,
    fullPasses: decodePasses,
    recycled: 0,
  };
}

function rate(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : 0;
}

function now(): number {
  return performance.now();
}
