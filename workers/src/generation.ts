import type { Context } from 'hono';
import type { GeneratedToken, GenerateOptions, GenerationStats, Model, TokenSource, TokenStream } from 'recyclegpt';
import { responseBody, type ResponseBody } from './body.js';
import type { CpuBudget } from './budget.js';
import { badRequest, toOpenAIError, type OpenAIError } from './errors.js';
import { inOwnContext } from './own-context.js';
import type { Ticket, TurnQueue } from './queue.js';
import type { Limits, SamplingRequest } from './schema.js';

export type FinishReason = 'stop' | 'length';

/** What ended a generation before the request's max_tokens (null: max_tokens itself, a stop, or the end of text). */
export type Limit = 'cpu_time' | 'context_length' | null;

/** A token's log-probability and its most likely alternatives, with the token's text and UTF-8 bytes. */
export interface TokenLogprob {
  token: string;
  bytes: number[];
  logprob: number;
  top: { token: string; bytes: number[]; logprob: number }[];
  /** Where the token's text starts in the output, in characters (completions' text_offset). */
  at: number;
}

/** A stretch of output: the whole answer, or what one stream chunk adds. */
export interface Output {
  /** The answer's text (chat: its content channel). */
  text: string;
  /** Chat only: the text of a reasoning block (`<think>…</think>`), reported apart as `reasoning_content`. */
  reasoning: string;
  /** The answer's tokens with their log-probabilities, when the request asked for them. */
  logprobs?: TokenLogprob[];
}

/** How one endpoint shapes its JSON: the two OpenAI endpoints differ only in these pieces. */
export interface ResponseShape {
  idPrefix: string;
  object: string;
  chunkObject: string;
  /** The choice of a non-streamed response. */
  choice(output: Output, finish: FinishReason): unknown;
  /** The choice of one stream chunk; `first` lets chat announce the assistant role. */
  delta(output: Output, finish: FinishReason | null, first: boolean): unknown;
}

export interface GenerationJob {
  model: Model;
  modelId: string;
  request: SamplingRequest;
  /** Starts the generation through the SDK (`generate` or `chat`), which checks everything a caller can get wrong here. */
  start(options: GenerateOptions): TokenStream;
  /** The request field that holds the prompt, named in errors about its length. */
  promptParam: string;
}

/** What the generation routes share: the limits, the line for each model, the CPU budget. */
export interface GenerationDeps {
  limits: Limits;
  queue(modelId: string): TurnQueue;
  budget?: CpuBudget;
}

function checkDecodeMode(job: GenerationJob): void {
  if (job.request.recycleMode !== 'off' && !job.model.info.hasRecycleHead) {
    throw badRequest(`recycle.mode '${job.request.recycleMode}' needs a recycle head, and '${job.modelId}' was loaded without one. Use 'off'.`, 'recycle.mode');
  }
}

/**
 * Starts the generation and checks the prompt's length (known from the SDK at the call) against this server's
 * limit and the CPU budget. A budget shorter than max_tokens restarts the call with fewer tokens: a stream runs
 * nothing until it is read, so only the prompt is rendered twice.
 */
function startGeneration(job: GenerationJob, deps: GenerationDeps, signal: AbortSignal): { stream: TokenStream; maxTokens: number } {
  const { request, promptParam } = job;
  const options: GenerateOptions = {
    maxTokens: request.maxTokens,
    temperature: request.temperature,
    topP: request.topP,
    seed: request.seed,
    stop: request.stop,
    signal,
    decode: { mode: request.recycleMode, adaptive: request.recycleAdaptive, draftLength: request.draftLength },
    logprobs: request.logprobs,
  };
  const start = (maxTokens: number) => {
    try {
      return job.start({ ...options, maxTokens });
    } catch (error) {
      throw toOpenAIError(error, promptParam);
    }
  };
  let stream = start(request.maxTokens);
  const { promptTokens } = stream;
  if (promptTokens > deps.limits.maxPromptTokens) {
    throw badRequest(`The prompt is ${promptTokens} tokens; this server accepts at most ${deps.limits.maxPromptTokens}. Shorten it.`, promptParam, 'context_length_exceeded');
  }
  const cpu = deps.budget?.tokens(promptTokens, promptParam) ?? Number.POSITIVE_INFINITY;
  if (cpu < request.maxTokens) stream = start(cpu);
  return { stream, maxTokens: Math.min(cpu, request.maxTokens) };
}

/** Why a generation that ended with 'length' stopped short of the request's max_tokens. */
function limitOf(stats: GenerationStats, maxTokens: number, request: SamplingRequest): Limit {
  if (stats.finishReason !== 'length') return null;
  // The SDK ends a generation that fills the context before its maxTokens.
  if (stats.generatedTokens < maxTokens) return 'context_length';
  return maxTokens < request.maxTokens ? 'cpu_time' : null;
}

function usage(stats: GenerationStats) {
  return { prompt_tokens: stats.promptTokens, completion_tokens: stats.generatedTokens, total_tokens: stats.promptTokens + stats.generatedTokens };
}

/**
 * The `recyclegpt` extension field: how fast it ran, how much of the prompt was reused, how well recycling did.
 * Times and rates are null when the clock did not move while the engine computed (`timing: 'unmeasured'`: inside
 * deployed Workers it moves only at I/O), never a wrong figure.
 */
export function recycleStats(stats: GenerationStats, limit: Limit) {
  const measured = stats.timing === 'measured';
  const rate = (tokensPerSecond: number, ms: number) => (measured && ms > 0 ? round(tokensPerSecond) : null);
  return {
    decode_mode: stats.decodeMode,
    timing: stats.timing,
    tokens_per_second: rate(stats.decodeTokensPerSecond, stats.decodeMs),
    prompt_tokens_per_second: rate(stats.prefillTokensPerSecond, stats.prefillMs),
    prefill_ms: measured ? round(stats.prefillMs) : null,
    decode_ms: measured ? round(stats.decodeMs) : null,
    // Prompt tokens whose KV entries were kept from the previous generation (a conversation's earlier turns).
    reused_prompt_tokens: stats.reusedPromptTokens,
    full_passes: stats.fullPasses,
    recycled_tokens: stats.recycled,
    acceptance_rate: stats.acceptanceRate ?? null,
    // Adaptive exact/chain decoding stopped drafting: on this machine it cost more than it saved.
    drafting_stopped: stats.draftingStopped ?? false,
    // Set when the generation stopped at the context or the CPU budget instead of max_tokens.
    limit: stats.finishReason === 'length' ? limit : null,
  };
}

const round = (x: number) => Math.round(x * 100) / 100;
const finishReason = (stats: GenerationStats): FinishReason => (stats.finishReason === 'length' ? 'length' : 'stop');

/** Turns the SDK's tokens into output stretches: text by channel, log-probabilities with their token strings. */
class Collector {
  private readonly decoder = new TextDecoder();
  /** Characters of answer text so far. */
  private length = 0;

  constructor(private readonly model: Model) {}

  output(tokens: GeneratedToken[], withLogprobs: boolean): Output {
    const output: Output = { text: '', reasoning: '', ...(withLogprobs && { logprobs: [] }) };
    for (const token of tokens) {
      if (token.channel === 'reasoning') {
        output.reasoning += token.text;
        continue;
      }
      if (output.logprobs && token.logprob !== undefined) {
        output.logprobs.push({ ...this.describe(token.id), logprob: token.logprob, top: (token.topLogprobs ?? []).map((t) => ({ ...this.describe(t.id), logprob: t.logprob })), at: this.length });
      }
      output.text += token.text;
      this.length += token.text.length;
    }
    return output;
  }

  /** A token as OpenAI reports it: its own bytes (a piece of a character for byte tokens) and their text. */
  private describe(id: number): { token: string; bytes: number[] } {
    const bytes = this.model.tokenizer.tokenToBytes(id, { unparseSpecial: true });
    return { token: this.decoder.decode(bytes), bytes: Array.from(bytes) };
  }
}

/** How a response is written: server-sent events, or one JSON object after spaces. */
interface Format {
  contentType: string;
  heartbeat: string;
  token(token: GeneratedToken): string;
  end(stats: GenerationStats, limit: Limit): string;
  error(error: OpenAIError): string;
}

type Head = { id: string; created: number; model: string };

/**
 * OpenAI's server-sent events: `data: {chunk}` per token, the finish chunk, optional usage, `data: [DONE]`.
 * Each token's chunk says in `recyclegpt.source` where the token came from: a full pass, or the recycle head's
 * guess kept by the check (what the playground marks).
 */
function eventFormat(shape: ResponseShape, head: Head, collector: Collector, request: SamplingRequest): Format {
  const event = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
  const chunk = (choices: unknown[], extra?: object) => event({ ...head, object: shape.chunkObject, choices, ...extra });
  const withLogprobs = request.logprobs !== undefined;
  let first = true;
  return {
    contentType: 'text/event-stream; charset=utf-8',
    // A comment line: SSE clients skip it.
    heartbeat: ': waiting for the model\n\n',
    token(token) {
      const output = collector.output([token], withLogprobs);
      // A token that completes no character yet sends nothing, unless its log-probability was asked for.
      if (!output.text && !output.reasoning && !output.logprobs?.length && !first) return '';
      const text = chunk([shape.delta(output, null, first)], { recyclegpt: { source: token.source satisfies TokenSource } });
      first = false;
      return text;
    },
    end(stats, limit) {
      const finish = chunk([shape.delta({ text: '', reasoning: '' }, finishReason(stats), first)], { recyclegpt: recycleStats(stats, limit) });
      return finish + (request.includeUsage ? chunk([], { usage: usage(stats) }) : '') + 'data: [DONE]\n\n';
    },
    // Headers are gone already: the error travels as a last event, OpenAI-style.
    error: (error) => event(error.body()),
  };
}

/**
 * A non-streamed response: the whole JSON object at the end. A space per token (JSON allows whitespace
 * before a value) keeps bytes going to the socket, which is how a disconnect is noticed at all.
 */
function jsonFormat(shape: ResponseShape, head: Head, collector: Collector, request: SamplingRequest): Format {
  const tokens: GeneratedToken[] = [];
  return {
    contentType: 'application/json; charset=utf-8',
    heartbeat: ' ',
    token(token) {
      tokens.push(token);
      return ' ';
    },
    end(stats, limit) {
      const output = collector.output(tokens, request.logprobs !== undefined);
      return JSON.stringify({ ...head, object: shape.object, choices: [shape.choice(output, finishReason(stats))], usage: usage(stats), recyclegpt: recycleStats(stats, limit) });
    },
    error: (error) => JSON.stringify(error.body()),
  };
}

/** Waits for the turn (heartbeats meanwhile), generates, writes; the turn is released however it ends. */
async function drive(stream: TokenStream, ticket: Ticket, body: ResponseBody, format: Format, limit: (stats: GenerationStats) => Limit, budget: CpuBudget | undefined): Promise<void> {
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
    body.write(format.end(stats, limit(stats)));
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
export function keepAlive(c: Context, until: Promise<void>): void {
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
  const body = responseBody(c.req.raw.signal);
  const { stream, maxTokens } = startGeneration(job, deps, body.gone);
  const ticket = deps.queue(job.modelId).enter();
  const head = { id: `${shape.idPrefix}-${crypto.randomUUID().replaceAll('-', '')}`, created: Math.floor(Date.now() / 1000), model: job.modelId };
  const collector = new Collector(job.model);
  const format = job.request.stream ? eventFormat(shape, head, collector, job.request) : jsonFormat(shape, head, collector, job.request);
  keepAlive(c, drive(stream, ticket, body, format, (stats) => limitOf(stats, maxTokens, job.request), deps.budget));
  return new Response(body.stream, { headers: { 'content-type': format.contentType, 'cache-control': 'no-cache' } });
}
