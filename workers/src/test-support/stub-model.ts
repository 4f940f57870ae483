import { ContextFullError, InvalidArgumentError } from 'recyclegpt';
import { RecycleGPTError, UnsupportedParameterError } from 'recyclegpt';
import type { ChatMessage, ChatOptions, EmbedInput, EmbedOptions, EmbeddingRun, Embeddings, GeneratedToken, GenerateOptions, GenerationStats, Model, ModelInfo, Tokenizer, TokenStream } from 'recyclegpt';

/**
 * A stand-in for the SDK's Model with the same contract the routes rely on: every caller error is thrown at the
 * call (token ids, a prompt longer than the context, logprobs in fast mode), tokens stream one by one, generations
 * on one model run one at a time, `signal` stops a generation, stop strings end it, the context's end ends it.
 * Each prompt token is one character (ids 0–255); the model "writes" the words w0 w1 w2 …, prefixed by `tag`, each
 * one token (ids from 256 on, in the order it first wrote them). chat() renders "role: content" lines; offered tools
 * (toolChoice other than 'none'), it writes "ok " (unless a call is required) and then calls the first tool with
 * {"n":1} in three pieces, as the SDK's tokens carry calls. A json_schema format with `uniqueItems` is refused as
 * the SDK refuses it (UnsupportedParameterError at its pointer). embed() gives
 * each input the unit vector of its token ids' sum in `dim` 8 (component j: cos(sum + j)), in the same turns.
 */
export interface StubModel extends Model {
  /** Generations that ran to an end (finished, stopped or aborted), in order, with how they ended. */
  readonly finished: { tag: string; finishReason: string; tokens: number }[];
  /** What chat() was called with. */
  readonly chats: { messages: ChatMessage[]; options: ChatOptions }[];
  /** Embedding runs that ran, in order, with their first input's text. */
  readonly embedded: string[];
  /** The most generations that ever ran at once (the routes must keep it at 1). */
  readonly mostAtOnce: number;
  /** Generations running now. */
  readonly running: number;
}

export interface StubOptions {
  tag?: (prompt: string) => string;
  contextLength?: number;
  hasRecycleHead?: boolean;
  /** Milliseconds per token (default 1). */
  stepMs?: number;
  /** Whether the clock moved (default) or stood still as in deployed Workers. */
  timing?: GenerationStats['timing'];
  /** chat(): this many first tokens form a reasoning block. */
  reasoningTokens?: number;
}

const PROMPT_VOCABULARY = 256;

export function stubModel(options: StubOptions = {}): StubModel {
  const info: ModelInfo = {
    architecture: 'llama', name: 'stub', parameters: 0, tensorTypes: {}, vocabSize: PROMPT_VOCABULARY, dim: 8, layers: 1, heads: 1, kvHeads: 1, ffnDim: 8,
    contextLength: options.contextLength ?? 4096, sequences: 1, kvBytesPerSequence: 0, tokenizer: 'llama', hasRecycleHead: options.hasRecycleHead ?? true,
    backend: 'wasm', backendReason: 'asked for', kernels: 'simd128', kernelsReason: 'the only module given',
  };
  const finished: StubModel['finished'] = [];
  const embedded: string[] = [];
  const chats: StubModel['chats'] = [];
  let running = 0;
  let mostAtOnce = 0;
  let queue: Promise<void> = Promise.resolve();
  /** What the last generation left in the "KV cache": its prompt and its tokens. */
  let cached: number[] = [];
  const words: string[] = [];
  const utf8 = new TextEncoder();

  const wordId = (word: string) => {
    let index = words.indexOf(word);
    if (index < 0) index = words.push(word) - 1;
    return PROMPT_VOCABULARY + index;
  };
  const textOf = (id: number) => (id < PROMPT_VOCABULARY ? String.fromCharCode(id) : (words[id - PROMPT_VOCABULARY] ?? ''));
  const tokenizer = {
    kind: 'llama', vocabSize: PROMPT_VOCABULARY, addBos: false, addEos: false,
    encode: (text: string) => Array.from(text, (ch) => ch.charCodeAt(0) & 255),
    decode: (ids: ArrayLike<number>) => Array.from(ids, textOf).join(''),
    tokenToBytes: (id: number) => utf8.encode(textOf(id)),
    tokenText: textOf,
    isEog: () => false,
  } as Tokenizer;

  function generate(prompt: string | number[], opts: GenerateOptions = {}, channels?: { reasoning: number }): TokenStream {
    const ids = typeof prompt === 'string' ? tokenizer.encode(prompt) : prompt;
    const bad = ids.find((id) => id >= PROMPT_VOCABULARY);
    if (bad !== undefined) throw new InvalidArgumentError(`token id ${bad} is out of range: the vocabulary has ${PROMPT_VOCABULARY} tokens`);
    if (ids.length > info.contextLength) throw new ContextFullError(ids.length, info.contextLength);
    const mode = opts.decode?.mode ?? 'off';
    const format = opts.responseFormat;
    if (format?.type === 'json_schema' && typeof format.schema === 'object' && 'uniqueItems' in format.schema) {
      throw new UnsupportedParameterError('#/uniqueItems', 'JSON Schema keyword "uniqueItems" (at #/uniqueItems) is not supported by constrained decoding; remove it or use a supported form.');
    }
    if (opts.logprobs !== undefined && mode === 'fast') throw new InvalidArgumentError("logprobs are not available in decode mode 'fast'");
    const text = tokenizer.decode(ids);
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
      let reused = 0;
      while (reused < Math.min(cached.length, ids.length - 1) && cached[reused] === ids[reused]) reused++;
      cached = [...ids];
      let count = 0;
      let finishReason: GenerationStats['finishReason'] = 'length';
      let written = '';
      try {
        for (; count < (opts.maxTokens ?? 16) && ids.length + count < info.contextLength; count++) {
          await new Promise((resolve) => setTimeout(resolve, options.stepMs ?? 1));
          if (opts.signal?.aborted) { finishReason = 'abort'; break; }
          const piece = `${tag}w${count} `;
          written += piece;
          if (opts.stop?.some((s) => written.includes(s))) { finishReason = 'stop'; break; }
          const token: GeneratedToken = { id: wordId(piece), text: piece, source: mode !== 'off' && count % 2 === 1 ? 'recycled' : 'pass' };
          cached.push(token.id);
          if (opts.logprobs !== undefined) {
            token.logprob = -0.25 * (count + 1);
            const alternatives = Array.from({ length: opts.logprobs }, (_, k) => ({ id: wordId(`alt${k}`), logprob: token.logprob! - k - 1 }));
            token.topLogprobs = [{ id: token.id, logprob: token.logprob }, ...alternatives].slice(0, opts.logprobs);
          }
          if (channels) token.channel = count < channels.reasoning ? 'reasoning' : 'content';
          yield token;
        }
      } finally {
        running--;
        finished.push({ tag, finishReason, tokens: count });
        const measured = (options.timing ?? 'measured') === 'measured';
        resolveStats({
          promptTokens: ids.length, reusedPromptTokens: reused, generatedTokens: count, timing: options.timing ?? 'measured',
          prefillMs: measured ? 1 : 0, decodeMs: measured ? count : 0, prefillTokensPerSecond: measured ? 1000 : 0, decodeTokensPerSecond: measured ? 1000 : 0,
          finishReason, decodeMode: mode, fullPasses: count, proposed: 0, recycled: 0,
          acceptanceRate: mode === 'exact' ? 0.5 : undefined,
        });
        release();
      }
    }
    return { promptTokens: ids.length, stats, [Symbol.asyncIterator]: run };
  }

  function embed(input: EmbedInput, opts: EmbedOptions = {}): EmbeddingRun {
    const items = typeof input === 'string' ? [input] : input.every((x) => typeof x === 'number') ? [input as number[]] : (input as (string | number[])[]);
    const inputs = items.map((item) => (typeof item === 'string' ? tokenizer.encode(item) : item));
    for (const [i, ids] of inputs.entries()) {
      const bad = ids.find((id) => id >= PROMPT_VOCABULARY);
      if (bad !== undefined) throw new InvalidArgumentError(`input ${i} has token id ${bad}, out of range: the vocabulary has ${PROMPT_VOCABULARY} tokens`);
      if (ids.length > info.contextLength) throw new ContextFullError(ids.length, info.contextLength);
    }
    let started: Promise<Embeddings> | undefined;
    const run = async (): Promise<Embeddings> => {
      let release!: () => void;
      const turn = queue;
      queue = new Promise((resolve) => (release = resolve));
      await turn;
      running++;
      mostAtOnce = Math.max(mostAtOnce, running);
      try {
        await new Promise((resolve) => setTimeout(resolve, options.stepMs ?? 1));
        if (opts.signal?.aborted) throw new RecycleGPTError('ABORTED', 'embed() was aborted by its signal');
        embedded.push(tokenizer.decode(inputs[0]!));
        const vectors = inputs.map((ids) => {
          const sum = ids.reduce((a, b) => a + b, 0);
          const v = Float32Array.from({ length: info.dim }, (_, j) => Math.cos(sum + j));
          const norm = Math.hypot(...v);
          return v.map((x) => x / norm);
        });
        return { vectors, inputTokens: inputs.map((ids) => ids.length), pooling: 'mean', normalized: true, truncated: [] };
      } finally {
        running--;
        release();
      }
    };
    return { inputTokens: inputs.map((ids) => ids.length), then: (f, r) => (started ??= run()).then(f, r) };
  }

  /** The stream's first tokens turned into "ok " and a call of the first tool, as chat() with tools gives them. */
  function toolCalling(stream: TokenStream, opts: ChatOptions): TokenStream {
    const name = opts.tools![0]!.function.name;
    const script: Partial<GeneratedToken>[] = [
      ...(opts.toolChoice === 'auto' || opts.toolChoice === undefined ? [{ text: 'ok ', channel: 'content' as const }] : []),
      { text: '{"name": "' + name + '", "arguments": ', channel: 'tool', toolCalls: [{ index: 0, id: 'call_1', type: 'function', function: { name, arguments: '' } }] },
      { text: '{"n":', channel: 'tool', toolCalls: [{ index: 0, function: { arguments: '{"n":' } }] },
      { text: '1}}', channel: 'tool', toolCalls: [{ index: 0, function: { arguments: '1}' } }] },
    ];
    async function* run(): AsyncGenerator<GeneratedToken> {
      let i = 0;
      for await (const token of stream) yield { ...token, text: '', ...script[i++] };
    }
    return { promptTokens: stream.promptTokens, stats: stream.stats, [Symbol.asyncIterator]: run };
  }

  const render = (messages: ChatMessage[]) => messages.map((m) => `${m.role}: ${typeof m.content === 'string' ? m.content : (m.content ?? []).map((p) => p.text).join('\n')}\n`).join('') + 'assistant:';

  async function collect(stream: TokenStream) {
    const tokens: number[] = [];
    let text = '';
    for await (const t of stream) (tokens.push(t.id), (text += t.text));
    const s = await stream.stats;
    return { text, content: text, tokens, finishReason: s.finishReason, stats: s };
  }

  return {
    info, finished, chats, embedded, tokenizer, embed,
    get running() { return running; },
    get mostAtOnce() { return mostAtOnce; },
    tokenize: (t) => tokenizer.encode(t),
    detokenize: (ids) => tokenizer.decode(ids),
    generate: (prompt, opts) => generate(prompt, opts),
    complete: (prompt, opts) => collect(generate(prompt, opts)),
    chat(messages, opts = {}) {
      chats.push({ messages, options: opts });
      const stream = generate(render(messages), opts, { reasoning: options.reasoningTokens ?? 0 });
      return opts.tools?.length && opts.toolChoice !== 'none' ? toolCalling(stream, opts) : stream;
    },
    completeChat: (messages, opts) => collect(generate(render(messages), opts)),
    renderChat: (messages) => ({ text: render(messages), ids: tokenizer.encode(render(messages)), renderer: 'plain', droppedMessages: 0 }),
    evaluate: async () => [],
    dispose() {},
  };
}
