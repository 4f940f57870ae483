import type { Context } from 'hono';
import type { GeneratedToken, GenerationStats, Model, TokenStream } from 'recyclegpt';
import { responseBody, type ResponseBody } from './body.js';
import type { CpuBudget } from './budget.js';
import { badRequest, toOpenAIError, type OpenAIError } from './errors.js';
import { inOwnContext } from './own-context.js';
import type { Ticket, TurnQueue } from './queue.js';
import type { Limits, SamplingRequest } from './schema.js';

export type FinishReason = 'stop' | 'length';
/** What ended a generation before the request's max_tokens (null: max_tokens itself, a stop, or the end of text). */
export type Limit = 'cpu_time' | 'context_length' | null;

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

/** What the generation routes share: the limits, the line for each model, the CPU budget. */
export interface GenerationDeps {
  limits: Limits;
  queue(modelId: string): TurnQueue;
  budget?: CpuBudget;
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
  if (ids.length >= model.info.contextLength) {
    throw badRequest(`The prompt is ${ids.length} tokens but the model's context holds ${model.info.contextLength}. Shorten it.`, promptParam, 'context_length_exceeded');
  }
  return ids;
}

function checkDecodeMode(job: GenerationJob): void {
  if (job.request.recycleMode !== 'off' && !job.model.info.hasRecycleHead) {
    throw badRequest(`recycle.mode '${job.request.recycleMode}' needs a recycle head, and '${job.modelId}' was loaded without one. Use 'off'.`, 'recycle.mode');
  }
}

/** The request's max_tokens, cut to the room left in the context and to the CPU budget. */
function tokenLimit(job: GenerationJob, promptTokens: number, budget: CpuBudget | undefined): { maxTokens: number; limit: Limit } {
  const room = job.model.info.contextLength - promptTokens;
  const cpu = budget?.tokens(promptTokens, job.promptParam) ?? Number.POSITIVE_INFINITY;
  const maxTokens = Math.min(job.request.maxTokens, room, cpu);
  return { maxTokens, limit: maxTokens === job.request.maxTokens ? null : maxTokens === room ? 'context_length' : 'cpu_time' };
}

/** Starts a generation; the SDK checks the options here, so a bad one is a 400 before any byte is sent. */
function startGeneration(job: GenerationJob, ids: number[], maxTokens: number, signal: AbortSignal): TokenStream {
  const { request, model } = job;
  return model.generate(ids, {
    maxTokens,
    temperature: request.temperature,
    topP: request.topP,
    seed: request.seed,
    stop: [...request.stop, ...(job.templateStop ?? [])],
    signal,
    decode: { mode: request.recycleMode },
  });
}

function usage(stats: GenerationStats) {
  return { prompt_tokens: stats.promptTokens, completion_tokens: stats.generatedTokens, total_tokens: stats.promptTokens + stats.generatedTokens };
}

/**
 * The `recyclegpt` extension field: how fast it ran and how well recycling did. Rates are null when no
 * time was measured: inside deployed Workers the clock only moves across I/O, so a generation without I/O takes "0 ms".
 */
export function recycleStats(stats: GenerationStats, limit: Limit) {
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
    // Set when the generation stopped at the context or the CPU budget instead of max_tokens.
    limit: stats.finishReason === 'length' ? limit : null,
  };
}

const round = (x: number) => Math.round(x * 100) / 100;
const finishReason = (stats: GenerationStats): FinishReason => (stats.finishReason === 'length' ? 'length' : 'stop');

/** How a response is written: server-sent events, or one JSON object after spaces. */
interface Format {
  contentType: string;
  heartbeat: string;
  token(token: GeneratedToken): string;
  end(stats: GenerationStats, limit: Limit): string;
  error(error: OpenAIError): string;
}

type Head = { id: string; created: number; model: string };

/** OpenAI's server-sent events: `data: {chunk}` per token, the finish chunk, optional usage, `data: [DONE]`. */
function eventFormat(shape: ResponseShape, head: Head, includeUsage: boolean): Format {
  const event = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
  const chunk = (choices: unknown[], extra?: object) => event({ ...head, object: shape.chunkObject, choices, ...extra });
  let first = true;
  return {
    contentType: 'text/event-stream; charset=utf-8',
    // A comment line: SSE clients skip it.
    heartbeat: ': waiting for the model\n\n',
    token(token) {
      if (token.text === '' && !first) return '';
      const text = chunk([shape.delta(token.text, null, first)]);
      first = false;
      return text;
    },
    end(stats, limit) {
      const finish = chunk([shape.delta('', finishReason(stats), first)], { recyclegpt: recycleStats(stats, limit) });
      return finish + (includeUsage ? chunk([], { usage: usage(stats) }) : '') + 'data: [DONE]\n\n';
    },
    // Headers are gone already: the error travels as a last event, OpenAI-style.
    error: (error) => event(error.body()),
  };
}

/**
 * A non-streamed response: the whole JSON object at the end. A space per token (JSON allows whitespace
 * before a value) keeps bytes going to the socket, which is how a disconnect is noticed at all.
 */
function jsonFormat(shape: ResponseShape, head: Head): Format {
  let text = '';
  return {
    contentType: 'application/json; charset=utf-8',
    heartbeat: ' ',
    token(token) {
      text += token.text;
      return ' ';
    },
    end: (stats, limit) =>
      JSON.stringify({ ...head, object: shape.object, choices: [shape.choice(text, finishReason(stats))], usage: usage(stats), recyclegpt: recycleStats(stats, limit) }),
    error: (error) => JSON.stringify(error.body()),
  };
}

/** Waits for the turn (heartbeats meanwhile), generates, writes; the turn is released however it ends. */
async function drive(stream: TokenStream, ticket: Ticket, body: ResponseBody, format: Format, limit: Limit, budget: CpuBudget | undefined): Promise<void> {
  const stopHeartbeat = body.heartbeat(format.heartbeat);
  try {
    await inOwnContext(ticket.ready(body.gone));
  } catch {
    // The client left while waiting: nothing ran.
    return body.close();
  } finally {
    stopHeartbeat();
  }
  try {
    for await (const token of stream) {
      ticket.progress();
      body.write(format.token(token));
      await body.flow();
    }
    const stats = await stream.stats;
    budget?.observe(stats);
    body.write(format.end(stats, limit));
  } catch (err) {
    const error = toOpenAIError(err);
    if (error.status >= 500) console.error(err);
    body.write(format.error(error));
  } finally {
    ticket.release();
    body.close();
  }
}

/**
 * Workers cancel a request whose client went away together with its timers, and the SDK's decode loop
 * yields to the event loop through a timer: without waitUntil the generation would stall at its next
 * yield and never hand the model on. Other runtimes have no execution context and need nothing.
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

/**
 * Runs one generation: every check that can refuse the request runs first (400, 429), then the response
 * starts at once and the generation writes into it when its turn comes (see body.ts for why at once).
 */
export function respond(c: Context, shape: ResponseShape, job: GenerationJob, deps: GenerationDeps): Response {
  checkDecodeMode(job);
  const ids = promptIds(job, deps.limits);
  const { maxTokens, limit } = tokenLimit(job, ids.length, deps.budget);
  const body = responseBody(c.req.raw.signal);
  const stream = startGeneration(job, ids, maxTokens, body.gone);
  const ticket = deps.queue(job.modelId).enter();
  const head = { id: `${shape.idPrefix}-${crypto.randomUUID().replaceAll('-', '')}`, created: Math.floor(Date.now() / 1000), model: job.modelId };
  const format = job.request.stream ? eventFormat(shape, head, job.request.includeUsage) : jsonFormat(shape, head);
  keepAlive(c, drive(stream, ticket, body, format, limit, deps.budget));
  return new Response(body.stream, { headers: { 'content-type': format.contentType, 'cache-control': 'no-cache' } });
}
