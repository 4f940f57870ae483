import type { GeneratedToken, GenerateOptions, GenerationStats, Model, ModelInfo, TokenStream } from 'recyclegpt';

/**
 * A stand-in for the SDK's Model with the same contract the routes rely on: tokens stream one by one,
 * generations on one model run one at a time, `signal` stops a generation, stop strings end it.
 * Each prompt token is one character; the model "writes" the words w0 w1 w2 …, prefixed by `tag`.
 */
export interface StubModel extends Model {
  /** Generations that ran to an end (finished, stopped or aborted), in order, with how they ended. */
  readonly finished: { tag: string; finishReason: string; tokens: number }[];
  /** The most generations that ever ran at once (the routes must keep it at 1). */
  readonly mostAtOnce: number;
  /** Generations running now. */
  readonly running: number;
}

export interface StubOptions {
  tag?: (prompt: string) => string;
  chatTemplate?: string;
  contextLength?: number;
  hasRecycleHead?: boolean;
  /** Milliseconds per token (default 1). */
  stepMs?: number;
}

export function stubModel(options: StubOptions = {}): StubModel {
  const info: ModelInfo = {
    architecture: 'llama', name: 'stub', parameters: 0, tensorTypes: {}, vocabSize: 256, dim: 8, layers: 1, heads: 1, kvHeads: 1, ffnDim: 8,
    contextLength: options.contextLength ?? 4096, sequences: 1, kvBytesPerSequence: 0, tokenizer: 'llama', chatTemplate: options.chatTemplate, hasRecycleHead: options.hasRecycleHead ?? true,
    backend: 'wasm', backendReason: 'asked for',
  };
  const finished: StubModel['finished'] = [];
  let running = 0;
  let mostAtOnce = 0;
  let queue: Promise<void> = Promise.resolve();
  const tokenize = (text: string) => Array.from(text, (ch) => ch.charCodeAt(0) & 255);

  function generate(prompt: string | number[], opts: GenerateOptions = {}): TokenStream {
    const text = typeof prompt === 'string' ? prompt : String.fromCharCode(...prompt);
    const tag = options.tag?.(text) ?? '';
    let resolveStats!: (s: GenerationStats) => void;
    const stats = new Promise<GenerationStats>((resolve) => (resolveStats = resolve));
    async function* run(): AsyncGenerator<GeneratedToken> {
      let release!: () => void;
      const turn = queue;
      queue = new Promise((resolve) => (release = resolve));
      await turn;
      running++;
      mostAtOnce = Math.max(mostAtOnce, running);
      let count = 0;
      let finishReason: GenerationStats['finishReason'] = 'length';
      let written = '';
      try {
        for (; count < (opts.maxTokens ?? 16); count++) {
          await new Promise((resolve) => setTimeout(resolve, options.stepMs ?? 1));
          if (opts.signal?.aborted) { finishReason = 'abort'; break; }
          const piece = `${tag}w${count} `;
          written += piece;
          if (opts.stop?.some((s) => written.includes(s))) { finishReason = 'stop'; break; }
          yield { id: count, text: piece };
        }
      } finally {
        running--;
        finished.push({ tag, finishReason, tokens: count });
        resolveStats({
          promptTokens: tokenize(text).length, generatedTokens: count, prefillMs: 1, decodeMs: count, prefillTokensPerSecond: 1000,
          decodeTokensPerSecond: 1000, finishReason, decodeMode: opts.decode?.mode ?? 'off', fullPasses: count, proposed: 0, recycled: 0,
          acceptanceRate: opts.decode?.mode === 'exact' ? 0.5 : undefined,
        });
        release();
      }
    }
    return Object.assign(run(), { stats });
  }

  return {
    info, finished, tokenizer: undefined as never,
    get running() { return running; },
    get mostAtOnce() { return mostAtOnce; },
    tokenize: (t) => tokenize(t),
    detokenize: (ids) => String.fromCharCode(...Array.from(ids)),
    generate,
    async complete(prompt, opts) {
      const stream = generate(prompt, opts);
      let text = '';
      for await (const t of stream) text += t.text;
      const s = await stream.stats;
      return { text, tokens: [], finishReason: s.finishReason, stats: s };
    },
    evaluate: async () => [],
    dispose() {},
  };
}
