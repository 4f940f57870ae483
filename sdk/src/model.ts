/** loadModel: a GGUF source → a ready Model (engine instance, weights, tokenizer, KV cache). */
import { openBackend, type LoadingBackend } from './backend.js';
import { TensorKind } from './contract/architectures.js';
import { collectChat } from './chat/completion.js';
import { buildChatPrompt } from './chat/prompt.js';
import { chatFormat, type ChatFormat } from './chat/template.js';
import { embed, embeddingRun, filePooling, planEmbedding } from './embed.js';
import { InvalidArgumentError, RecycleGPTError } from './errors.js';
import { Context, decode, type ReasoningMarkers } from './generate.js';
import { loadGGUF } from './gguf/load.js';
import { summarizeGGUF } from './gguf/summary.js';
import type { ModelSource } from './gguf/source.js';
import type { GGUFHeader } from './gguf/types.js';
import { architectureOf, modelShape, recycleTensorSlot, tensorSlot, weightBytes, type ModelShape } from './model-file.js';
import { fnv1a64, recycleConfig } from './recycle.js';
import { createTokenizer } from './tokenizer/index.js';
import type { Tokenizer } from './tokenizer/types.js';
import type {
  ChatCompletion,
  ChatMessage,
  ChatOptions,
  Completion,
  EmbedInput,
  EmbeddingRun,
  EmbedOptions,
  GenerateOptions,
  GenerationStats,
  GeneratedToken,
  LoadOptions,
  LoadProgress,
  Model,
  ModelInfo,
  RenderedChat,
  TokenStream,
} from './types.js';

const DEFAULT_CONTEXT = 2048;

export async function loadModel(source: ModelSource, options: LoadOptions = {}): Promise<Model> {
  const { context, info } = await openContext(source, options);
  return new LoadedModel(context, info);
}

/** Everything loadModel sets up, below the public API (benchmarks and tests of engine internals use it). */
export async function openContext(source: ModelSource, options: LoadOptions = {}): Promise<{ context: Context; info: ModelInfo }> {
  let llama: LoadingBackend | undefined;
  let tokenizer: Tokenizer | undefined;
  let info: ModelInfo | undefined;
  // token_embd's bytes, hashed (before the next reserve or ready, while the view is valid and before the
  // engine may repack the weights) so that a recycle head can be matched to this exact file.
  let embd: Uint8Array | undefined;
  let baseHash = '';
  const hashEmbd = () => {
    if (embd && options.recycle !== undefined) baseHash = fnv1a64(embd);
    embd = undefined;
  };
  const progress = (phase: LoadProgress['phase']) =>
    options.onProgress && ((p: { loaded: number; total?: number }) => options.onProgress!({ ...p, phase }));

  try {
    await loadGGUF(
      source,
      {
        async begin(header: GGUFHeader) {
          const { trainedContextLength, ...shape } = modelShape(header);
          tokenizer = createTokenizer(header.metadata);
          const contextLength = resolveContextLength(options.contextLength, trainedContextLength);
          const config = { ...shape, contextLength, kvType: options.kvType ?? 'f16', sequences: 1 } as const;
          const opened = await openBackend(options.backend ?? 'wasm', config, options.wasm, modelNeeds(header, shape));
          llama = opened.backend;
          info = { ...describe(header, shape, contextLength, tokenizer), backend: opened.name, backendReason: opened.reason };
        },
        reserve(tensor) {
          hashEmbd();
          const slot = tensorSlot(tensor, llama!.config);
          const view = llama!.reserve(slot.kind, slot.layer, tensor.type, slot.rows, slot.cols, tensor.byteSize, tensor.name);
          if (slot.kind === TensorKind.tokenEmbd) embd = view;
          return view;
        },
        async end() {
          hashEmbd();
          await llama!.ready();
        },
      },
      { signal: options.signal, onProgress: progress('model'), cache: options.cache, onCache: (report) => (info!.cache = report) },
    );

    if (options.recycle !== undefined) {
      let headLayers = 0;
      await loadGGUF(
        options.recycle,
        {
          begin(header: GGUFHeader) {
            const config = recycleConfig(header, llama!.config, info!.name, baseHash);
            llama!.attachRecycle(config);
            headLayers = config.layers;
          },
          reserve(tensor) {
            const slot = recycleTensorSlot(tensor, headLayers);
            return llama!.recycleReserve(slot.kind, slot.layer, tensor.type, slot.rows, slot.cols, tensor.byteSize, tensor.name);
          },
          async end() {
            await llama!.recycleReady();
          },
        },
        { signal: options.signal, onProgress: progress('recycle') },
      );
      info!.hasRecycleHead = true;
    }
  } catch (error) {
    // A GPU device holds its memory until freed; the WASM instance is simply dropped.
    llama?.free();
    throw error;
  }
  return { context: new Context(llama!, tokenizer!), info: info! };
}

function resolveContextLength(requested: number | undefined, trained: number): number {
  if (requested === undefined) return Math.min(trained, DEFAULT_CONTEXT);
  if (!Number.isInteger(requested) || requested < 1 || requested > trained) {
    throw new InvalidArgumentError(`contextLength must be an integer from 1 to the model's ${trained}, got ${String(requested)}`);
  }
  return requested;
}

/** What the file will ask of the backend: memory for its weights, and its tensors' kinds and types. */
function modelNeeds(header: GGUFHeader, shape: Omit<ModelShape, 'trainedContextLength'>) {
  const largest = header.tensors.reduce((a, b) => (b.byteSize > a.byteSize ? b : a));
  const tensors = new Map(header.tensors.map((t) => [`${t.type}:${t.name.replace(/^blk\.\d+\./, '')}`, { kind: tensorSlot(t, shape).kind, type: t.type }]));
  return { weights: { bytes: weightBytes(header), largest: { name: largest.name, bytes: largest.byteSize } }, tensors: [...tensors.values()] };
}

function describe(header: GGUFHeader, shape: Omit<ModelShape, 'trainedContextLength'>, contextLength: number, tokenizer: Tokenizer): Omit<ModelInfo, 'backend' | 'backendReason'> {
  const meta = header.metadata;
  const template = meta['tokenizer.chat_template'];
  const summary = summarizeGGUF(header);
  return {
    architecture: architectureOf(meta),
    name: summary.name ?? '',
    parameters: summary.parameterCount,
    tensorTypes: Object.fromEntries(summary.types.map((t) => [t.name, t.tensors])),
    vocabSize: shape.vocabSize,
    dim: shape.dim,
    layers: shape.layers,
    heads: shape.heads,
    kvHeads: shape.kvHeads,
    ffnDim: shape.ffnDim,
    contextLength,
    tokenizer: tokenizer.kind,
    chatTemplate: typeof template === 'string' ? template : undefined,
    hasRecycleHead: false,
    pooling: filePooling(meta, architectureOf(meta)),
  };
}

class LoadedModel implements Model {
  /** Generations share one KV cache, so they take turns. */
  private turn: Promise<void> = Promise.resolve();
  private disposed = false;
  private format?: ChatFormat;

  constructor(
    private readonly context: Context,
    readonly info: ModelInfo,
  ) {}

  get tokenizer(): Tokenizer {
    return this.context.tokenizer;
  }

  tokenize(text: string, options: { addSpecial?: boolean; parseSpecial?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, options);
  }

  detokenize(ids: ArrayLike<number>): string {
    return this.tokenizer.decode(ids);
  }

  generate(prompt: string | number[], options: GenerateOptions = {}): TokenStream {
    const ids = typeof prompt === 'string' ? this.tokenize(prompt, options) : prompt;
    return this.stream(ids, options);
  }

  chat(messages: ChatMessage[], options: ChatOptions = {}): TokenStream {
    const prompt = buildChatPrompt(this.chatFormat(), this.tokenizer, messages, options, this.info.contextLength);
    const stop = [...(options.stop ?? []), ...prompt.stop];
    // A formatted answer is all content: a `<think>` token the format lets through (inside a JSON string) is text.
    const formatted = options.responseFormat !== undefined && options.responseFormat?.type !== 'text';
    return this.stream(prompt.ids, { ...options, stop }, formatted ? undefined : prompt.reasoning);
  }

  renderChat(messages: ChatMessage[], options: ChatOptions = {}): RenderedChat {
    const { text, ids, renderer, droppedMessages } = buildChatPrompt(this.chatFormat(), this.tokenizer, messages, options, this.info.contextLength);
    return { text, ids, renderer, droppedMessages };
  }

  async completeChat(messages: ChatMessage[], options: ChatOptions = {}): Promise<ChatCompletion> {
    return collectChat(this.chat(messages, options));
  }

  /** A generation of `ids`, checked now (decode throws every caller error at once), run when its turn comes. */
  private stream(ids: number[], options: GenerateOptions, reasoning?: ReasoningMarkers): TokenStream {
    this.checkAlive();
    let settle!: { resolve: (s: GenerationStats) => void; reject: (e: unknown) => void };
    const stats = new Promise<GenerationStats>((resolve, reject) => (settle = { resolve, reject }));
    const tokens = decode(this.context, ids, options, (s) => settle.resolve(s), reasoning);
    stats.catch(() => {}); // a caller who only iterates sees the error there
    const self = this;
    async function* run(): AsyncGenerator<GeneratedToken> {
      let release = () => {};
      try {
        release = await self.takeTurn();
        yield* tokens;
      } catch (error) {
        settle.reject(error);
        throw error;
      } finally {
        release();
      }
    }
    return { promptTokens: ids.length, stats, [Symbol.asyncIterator]: run };
  }

  /** Built on first use: parsing a large template takes a moment. */
  private chatFormat(): ChatFormat {
    return (this.format ??= chatFormat(this.info.chatTemplate, this.tokenizer));
  }

  async complete(prompt: string | number[], options: GenerateOptions = {}): Promise<Completion> {
    const stream = this.generate(prompt, options);
    const tokens: number[] = [];
    let text = '';
    for await (const token of stream) {
      tokens.push(token.id);
      text += token.text;
    }
    const stats = await stream.stats;
    return { text, tokens, finishReason: stats.finishReason, stats };
  }

  async evaluate(ids: number[]): Promise<Float32Array[]> {
    const release = await this.takeTurn();
    try {
      return await this.context.prefill(ids, true);
    } finally {
      release();
    }
  }

  embed(input: EmbedInput, options: EmbedOptions = {}): EmbeddingRun {
    this.checkAlive();
    const { llama } = this.context;
    const { vocabSize, contextLength, pooling, backend } = this.info;
    const plan = planEmbedding(input, options, { tokenizer: this.tokenizer, vocabSize, contextLength, pooling, backend, hasHidden: typeof llama.hidden === 'function' });
    return embeddingRun(plan, async () => {
      const release = await this.takeTurn();
      try {
        return await embed(this.context, plan, options.signal);
      } finally {
        release();
      }
    });
  }

  dispose(): void {
    this.disposed = true;
    this.context.llama.free();
  }

  private async takeTurn(): Promise<() => void> {
    this.checkAlive();
    let release!: () => void;
    const previous = this.turn;
    this.turn = new Promise((resolve) => (release = resolve));
    await previous;
    // Disposed while waiting.
    if (this.disposed) release();
    this.checkAlive();
    return release;
  }

  private checkAlive(): void {
    if (this.disposed) throw new RecycleGPTError('DISPOSED', 'the model was disposed; load it again');
  }
}
