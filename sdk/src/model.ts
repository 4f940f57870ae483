/** loadModel: a GGUF source → a ready Model (engine instance, weights, tokenizer, KV cache). */
import { openBackend, type LoadingBackend } from './backend.js';
import { TensorKind } from './contract/architectures.js';
import { KERNEL_CHOICES, isKernelChoice } from './contract/modes.js';
import { collectChat } from './chat/completion.js';
import { buildChatPrompt } from './chat/prompt.js';
import { ToolCallReader, withToolCalls } from './chat/tool-calls.js';
import { planTools, rethrowForTools } from './chat/tools.js';
import { chatFormat, type ChatFormat } from './chat/template.js';
import { embed, embeddingRun, filePooling, planEmbedding } from './embed.js';
import { InvalidArgumentError, RecycleGPTError } from './errors.js';
import { countDraftCosts, type DraftCounts } from './decode/cost-model.js';
import { Context, decode, type ReasoningMarkers } from './generate.js';
import { loadGGUF } from './gguf/load.js';
import { summarizeGGUF } from './gguf/summary.js';
import type { ModelSource } from './gguf/source.js';
import type { GGUFHeader } from './gguf/types.js';
import { architectureOf, modelShape, recycleTensorSlot, tensorSlot, weightBytes, type ModelShape } from './model-file.js';
import { checkShortlistOption, fnv1a64, recycleConfig, recycleShortlist } from './recycle.js';
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
  let baseHeader: GGUFHeader | undefined;
  let backendName: string | undefined;
  let draftCounts: DraftCounts | undefined;
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

  checkShortlistOption(options.recycleShortlist, options.recycle !== undefined);
  if (options.kernels !== undefined && !isKernelChoice(options.kernels)) {
    throw new InvalidArgumentError(`kernels must be ${KERNEL_CHOICES.map((c) => `'${c}'`).join(', ')}, got ${String(options.kernels)}`);
  }
  if (options.memoryLimit !== undefined && !(Number.isFinite(options.memoryLimit) && options.memoryLimit > 0)) {
    throw new InvalidArgumentError(`memoryLimit must be a positive number of bytes, got ${String(options.memoryLimit)}`);
  }
  try {
    await loadGGUF(
      source,
      {
        async begin(header: GGUFHeader) {
          baseHeader = header;
          const { trainedContextLength, ...shape } = modelShape(header);
          tokenizer = createTokenizer(header.metadata);
          const contextLength = resolveContextLength(options.contextLength, trainedContextLength);
          const kvType = options.kvType ?? 'f16';
          const needs = modelNeeds(header, shape, options.memoryLimit);
          let sequences = resolveSequences(options.sequences, { ...shape, contextLength, kvType });
          let opened: Awaited<ReturnType<typeof openBackend>>;
          for (;;) {
            try {
              opened = await openBackend(options.backend ?? 'wasm', { ...shape, contextLength, kvType, sequences }, options, needs);
              break;
            } catch (error) {
              // Sequences nobody asked for give way to the memory limit before the model is refused.
              const outOfMemory = error instanceof RecycleGPTError && error.code === 'OUT_OF_MEMORY';
              if (!outOfMemory || options.sequences !== undefined || sequences === 1) throw error;
              sequences--;
            }
          }
          llama = opened.backend;
          backendName = opened.name;
          info = {
            ...describe(header, shape, contextLength, tokenizer),
            sequences: llama.sequences,
            kvBytesPerSequence: llama.kvBytesPerSequence,
            backend: opened.name,
            backendReason: opened.reason,
            kernels: opened.kernels?.set,
            kernelsReason: opened.kernels?.reason,
          };
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

    // The cost model describes the WASM engine's kernels.
    const baseCounted = () => ({ tensors: baseHeader!.tensors, config: llama!.config });
    if (backendName === 'wasm') draftCounts = countDraftCosts(baseCounted());

    if (options.recycle !== undefined) {
      let headLayers = 0;
      let shortlist: number[] | undefined;
      await loadGGUF(
        options.recycle,
        {
          begin(header: GGUFHeader) {
            const config = recycleConfig(header, llama!.config, info!.name, baseHash);
            const { vocabSize } = llama!.config;
            const listed = recycleShortlist(header, vocabSize, options.recycleShortlist);
            // Where the backend scores whole rows only (WebGPU), the head keeps them.
            shortlist = llama!.recycleShortlist ? listed : undefined;
            llama!.attachRecycle(config);
            headLayers = config.layers;
            if (draftCounts) {
              draftCounts = countDraftCosts(baseCounted(), { tensors: header.tensors, config, outputRows: shortlist?.length ?? vocabSize });
            }
          },
          reserve(tensor) {
            const slot = recycleTensorSlot(tensor, headLayers);
            return llama!.recycleReserve(slot.kind, slot.layer, tensor.type, slot.rows, slot.cols, tensor.byteSize, tensor.name);
          },
          async end() {
            await llama!.recycleReady();
            if (shortlist) llama!.recycleShortlist!(shortlist);
          },
        },
        { signal: options.signal, onProgress: progress('recycle') },
      );
      info!.hasRecycleHead = true;
      info!.recycleShortlist = shortlist?.length;
      info!.kvBytesPerSequence = llama!.kvBytesPerSequence;
    }
  } catch (error) {
    // A GPU device holds its memory until freed; the WASM instance is simply dropped.
    llama?.free();
    throw error;
  }
  const context = new Context(llama!, tokenizer!);
  context.draftCounts = draftCounts;
  return { context, info: info! };
}

function resolveContextLength(requested: number | undefined, trained: number): number {
  if (requested === undefined) return Math.min(trained, DEFAULT_CONTEXT);
  if (!Number.isInteger(requested) || requested < 1 || requested > trained) {
    throw new InvalidArgumentError(`contextLength must be an integer from 1 to the model's ${trained}, got ${String(requested)}`);
  }
  return requested;
}

/** KV cache the default number of sequences may take, and the most it keeps unasked. */
const DEFAULT_SEQUENCES_BYTES = 32 * 2 ** 20;
const MAX_DEFAULT_SEQUENCES = 4;
const MAX_SEQUENCES = 64;

/** `sequences` as asked, or by default as many as fit DEFAULT_SEQUENCES_BYTES (the base's cache at its precision). */
function resolveSequences(requested: number | undefined, cache: { layers: number; contextLength: number; kvHeads: number; headDim: number; kvType: 'f16' | 'f32' }): number {
  if (requested === undefined) {
    const perSequence = 2 * cache.layers * cache.contextLength * cache.kvHeads * cache.headDim * (cache.kvType === 'f16' ? 2 : 4);
    return Math.max(1, Math.min(MAX_DEFAULT_SEQUENCES, Math.floor(DEFAULT_SEQUENCES_BYTES / perSequence)));
  }
  if (!Number.isInteger(requested) || requested < 1 || requested > MAX_SEQUENCES) {
    throw new InvalidArgumentError(`sequences must be an integer from 1 to ${MAX_SEQUENCES}, got ${String(requested)}`);
  }
  return requested;
}

/** What the file will ask of the backend: memory for its weights, and its tensors' kinds and types. */
function modelNeeds(header: GGUFHeader, shape: Omit<ModelShape, 'trainedContextLength'>, limit: number | undefined) {
  const largest = header.tensors.reduce((a, b) => (b.byteSize > a.byteSize ? b : a));
  const tensors = new Map(header.tensors.map((t) => [`${t.type}:${t.name.replace(/^blk\.\d+\./, '')}`, { kind: tensorSlot(t, shape).kind, type: t.type }]));
  return { weights: { bytes: weightBytes(header), largest: { name: largest.name, bytes: largest.byteSize }, limit }, tensors: [...tensors.values()] };
}

function describe(
  header: GGUFHeader,
  shape: Omit<ModelShape, 'trainedContextLength'>,
  contextLength: number,
  tokenizer: Tokenizer,
): Omit<ModelInfo, 'backend' | 'backendReason' | 'kernels' | 'kernelsReason' | 'sequences' | 'kvBytesPerSequence'> {
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
  /** Generations share the engine (and choose among its KV sequences), so they take turns. */
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
    const { prompt, plan, options: chatOptions } = this.chatPrompt(messages, options);
    const stop = [...(chatOptions.stop ?? []), ...prompt.stop];
    // A formatted answer is all content: a `<think>` token the format lets through (inside a JSON string) is text.
    const formatted = chatOptions.responseFormat !== undefined && chatOptions.responseFormat?.type !== 'text';
    let stream: TokenStream;
    try {
      stream = this.stream(prompt.ids, { ...chatOptions, stop }, formatted ? undefined : prompt.reasoning);
    } catch (error) {
      if (plan?.forced) rethrowForTools(error, plan);
      throw error;
    }
    return plan ? withToolCalls(stream, new ToolCallReader(plan.family, plan.names, plan.forced)) : stream;
  }

  renderChat(messages: ChatMessage[], options: ChatOptions = {}): RenderedChat {
    const { text, ids, renderer, droppedMessages } = this.chatPrompt(messages, options).prompt;
    return { text, ids, renderer, droppedMessages };
  }

  /** The prompt for `messages`, with the tools offered as `options` say (see chat/tools.ts). */
  private chatPrompt(messages: ChatMessage[], options: ChatOptions) {
    const format = this.chatFormat();
    const plan = planTools(messages, options, format.renderer === 'template' ? this.info.chatTemplate : undefined);
    const chatOptions = plan ? plan.options : { ...options, tools: options.toolChoice === 'none' ? undefined : options.tools, toolChoice: undefined };
    const prompt = buildChatPrompt(format, this.tokenizer, plan ? plan.messages : messages, chatOptions, this.info.contextLength, plan?.prefill);
    return { prompt, plan, options: chatOptions };
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
