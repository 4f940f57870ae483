import type { Context } from 'hono';
import type { GeneratedToken, GenerationStats, Model, TokenStream } from 'recyclegpt';
import { badRequest } from './errors.js';
import type { InFlight } from './limits.js';
import { sseResponse } from './sse.js';
import type { Limits, SamplingRequest } from './validate.js';

export type FinishReason = 'stop' | 'length';

/** How one endpoint shapes its JSON: the two OpenAI endpoints differ only in these pieces. */
export interface ResponseShape {
  idPrefix: string;
  object: string;
  chunkObject: string;
  /** The choice of a non-streamed response. */
  choice(text: string, finish: FinishReason): unknown;
  /** The choice of one stream chunk; `first` lets chat announce the assistant role. */
  delta(text: string, finish: FinishReason | null, first: boolean): unknown;
}

export interface GenerationJob {
  model: Model;
  modelId: string;
  prompt: string | number[];
  /** Chat prompts carry template tokens such as <|im_start|>, which must parse as special tokens. */
  parseSpecial: boolean;
  /** Stops added by the chat template, on top of the request's own. */
  templateStop?: string[];
  request: SamplingRequest;
  promptParam: string;
}

/** Tokenizes and checks the prompt before any response byte is sent, so limit errors are proper 4xx responses. */
function promptIds(job: GenerationJob, limits: Limits): number[] {
  const { model, prompt, promptParam } = job;
  const ids = typeof prompt === 'string' ? model.tokenize(prompt, { addSpecial: true, parseSpecial: job.parseSpecial }) : prompt;
  const badId = ids.find((id) => id >= model.info.vocabSize);
  if (badId !== undefined) throw badRequest(`Token id ${badId} is not in the vocabulary (size ${model.info.vocabSize}).`, promptParam);
  if (ids.length > limits.maxPromptTokens) {
    throw badRequest(`The prompt is ${ids.length} tokens; this server accepts at most ${limits.maxPromptTokens}. Shorten it.`, promptParam, 'context_length_exceeded');
  }
  if (ids.length >= job.model.info.contextLength) {
    throw badRequest(`The prompt is ${ids.length} tokens but the model's context holds ${model.info.contextLength}. Shorten it.`, promptParam, 'context_length_exceeded');
  }
  return ids;
}

function checkDecodeMode(job: GenerationJob): void {
  if (job.request.recycleMode !== 'off' && !job.model.info.hasRecycleHead) {
    throw badRequest(`recycle.mode '${job.request.recycleMode}' needs a recycle head, and '${job.modelId}' was loaded without one. Use 'off'.`, 'recycle.mode');
  }
}

/** Starts a generation; the SDK checks the options here, so a bad one is a 400 before any byte is sent. */
function startGeneration(job: GenerationJob, ids: number[], signal: AbortSignal): TokenStream {
  const { request, model } = job;
  return model.generate(ids, {
    // Room left in the context caps the length, so a long prompt ends with 'length' instead of an engine error.
    maxTokens: Math.min(request.maxTokens, model.info.contextLength - ids.length),
    temperature: request.temperature,
    topP: request.topP,
    seed: request.seed,
    stop: [...request.stop, ...(job.templateStop ?? [])],
    signal,
    decode: { mode: request.recycleMode },
  });
}

async function* tokens(stream: TokenStream, release: () => void): AsyncGenerator<GeneratedToken, GenerationStats> {
  try {
    for await (const token of stream) yield token;
    return await stream.stats;
  } finally {
    release();
  }
}

function usage(stats: GenerationStats) {
  return { prompt_tokens: stats.promptTokens, completion_tokens: stats.generatedTokens, total_tokens: stats.promptTokens + stats.generatedTokens };
}

/**
 * The `recyclegpt` extension field: how fast it ran and how well recycling did. Rates are null when no
 * time was measured: inside Workers the clock only moves across I/O, so a generation without I/O takes "0 ms".
 */
export function recycleStats(stats: GenerationStats) {
  const rate = (tokensPerSecond: number, ms: number) => (ms > 0 ? round(tokensPerSecond) : null);
  return {
    decode_mode: stats.decodeMode,
    tokens_per_second: rate(stats.decodeTokensPerSecond, stats.decodeMs),
    prompt_tokens_per_second: rate(stats.prefillTokensPerSecond, stats.prefillMs),
    prefill_ms: round(stats.prefillMs),
    decode_ms: round(stats.decodeMs),
    full_passes: stats.fullPasses,
    recycled_tokens: stats.recycled,
    acceptance_rate: stats.acceptanceRate ?? null,
  };
}

const round = (x: number) => Math.round(x * 100) / 100;
const finishReason = (stats: GenerationStats): FinishReason => (stats.finishReason === 'length' ? 'length' : 'stop');

/**
 * On Workers, a request whose client went away is cancelled together with its timers, and the SDK's
 * decode loop yields to the event loop through a timer: the generation would stall before its end and
 * never hand the model to the next request. waitUntil keeps the request alive until the generator has
 * finished. Other runtimes have no execution context and need nothing.
 */
function keepAlive(c: Context, until: Promise<void>): void {
  let context: { waitUntil(promise: Promise<unknown>): void } | undefined;
  try {
    context = c.executionCtx;
  } catch {
    return;
  }
  context.waitUntil(until);
}

/** Runs one generation and answers with JSON or, for `stream: true`, server-sent events. */
export async function respond(c: Context, shape: ResponseShape, job: GenerationJob, limits: Limits, inFlight: InFlight): Promise<Response> {
  checkDecodeMode(job);
  const ids = promptIds(job, limits);
  const abort = new AbortController();
  const stream = startGeneration(job, ids, abort.signal);
  const slot = inFlight.enter();
  let ended!: () => void;
  const generationEnded = new Promise<void>((resolve) => (ended = resolve));
  keepAlive(c, generationEnded);
  const release = () => (slot(), ended());
  // A client that goes away stops its generation: through the request's signal, or through the stream's cancel.
  c.req.raw.signal?.addEventListener('abort', () => abort.abort(), { once: true });
  const generator = tokens(stream, release);
  const id = `${shape.idPrefix}-${crypto.randomUUID().replaceAll('-', '')}`;
  const head = { id, created: Math.floor(Date.now() / 1000), model: job.modelId };

  if (!job.request.stream) {
    let text = '';
    let step = await generator.next();
    for (; !step.done; step = await generator.next()) text += step.value.text;
    const stats = step.value;
    return c.json({ ...head, object: shape.object, choices: [shape.choice(text, finishReason(stats))], usage: usage(stats), recyclegpt: recycleStats(stats) });
  }

  async function* chunks() {
    const chunk = (choices: unknown[], extra?: object) => ({ ...head, object: shape.chunkObject, choices, ...extra });
    let first = true;
    let step = await generator.next();
    for (; !step.done; step = await generator.next()) {
      if (step.value.text === '' && !first) continue;
      yield chunk([shape.delta(step.value.text, null, first)]);
      first = false;
    }
    const stats = step.value;
    yield chunk([shape.delta('', finishReason(stats), first)], { recyclegpt: recycleStats(stats) });
    if (job.request.includeUsage) yield chunk([], { usage: usage(stats) });
  }
  return sseResponse(chunks(), () => {
    abort.abort();
    // The slot is free at once; the generation ends at its next step. A generator cancelled before its
    // first step never runs its finally block, hence `ended` here too.
    slot();
    void generator.return(undefined as never).finally(ended);
  });
}
