import { vValidator } from '@hono/valibot-validator';
import type { MiddlewareHandler } from 'hono';
import type { ChatMessage } from 'recyclegpt';
import * as v from 'valibot';
import { HTTPException } from 'hono/http-exception';
import { badRequest, OpenAIError } from './errors.js';

/*
 * The request bodies of /v1/completions and /v1/chat/completions as valibot schemas, checked by Hono's
 * validator middleware. Each schema turns OpenAI's field names into the SamplingRequest the routes use.
 * Fields that would change the answer and are not implemented are refused by name (unsupported_parameter)
 * unless they carry their neutral value; harmless unknown fields (user, metadata, …) are ignored.
 */

/** The decode modes a request may ask for in the `recycle` extension field. */
export const DECODE_MODES = ['off', 'fast', 'exact', 'chain'] as const;
/** The SDK's range of drafts per pass in `chain` mode. */
const MAX_DRAFTS = 8;
export type RecycleMode = (typeof DECODE_MODES)[number];

export interface Limits {
  /** Largest max_tokens a request may ask for. */
  maxTokens: number;
  /** Largest prompt, in tokens after templating. */
  maxPromptTokens: number;
  /** Requests that may wait for the model while one generates; past it new ones get 429. */
  maxQueue: number;
  /** Most inputs one /v1/embeddings request may embed (each at most maxPromptTokens long). */
  maxEmbeddingInputs: number;
}

/** Fields shared by /v1/completions and /v1/chat/completions. */
export interface SamplingRequest {
  model: string;
  maxTokens: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  recycleMode: RecycleMode;
  /** `recycle.adaptive` (exact/chain): draft only while drafting pays (the SDK's default) or, false, at every step. */
  recycleAdaptive?: boolean;
  /** `recycle.draft_length` (chain): drafts per full pass. */
  draftLength?: number;
  /** Log-probabilities asked for: how many alternatives per token (0–20), or undefined for none. */
  logprobs?: number;
}

export interface CompletionRequest extends SamplingRequest {
  prompt: string | number[];
}

export interface ChatRequest extends SamplingRequest {
  messages: ChatMessage[];
}

// --- fields that are refused unless neutral ---------------------------------------------------------

/** The checks that mark a field as unsupported, so that their issues map to code unsupported_parameter. */
const unsupportedChecks = new WeakSet<object>();

function unsupportedCheck<T>(requirement: (value: T) => boolean, message: string) {
  unsupportedChecks.add(requirement);
  return v.check(requirement, message);
}

/** Accepts `field` only with a value that changes nothing (absent, null, or what `isNeutral` allows). */
function unsupportedUnless(field: string, isNeutral: (value: unknown) => boolean, hint = '') {
  const neutral = (value: unknown) => value === undefined || value === null || isNeutral(value);
  return v.optional(v.pipe(v.unknown(), unsupportedCheck(neutral, `'${field}' is not supported by this server${hint}; leave it out.`)));
}

const empty = (value: unknown) => (Array.isArray(value) ? value.length === 0 : typeof value === 'object' && value !== null && Object.keys(value).length === 0);
const zero = (value: unknown) => value === 0;
const no = (value: unknown) => value === false;

/** Unsupported on both endpoints: they steer sampling in ways the SDK does not implement. */
const COMMON_UNSUPPORTED = {
  logit_bias: unsupportedUnless('logit_bias', empty),
  presence_penalty: unsupportedUnless('presence_penalty', zero),
  frequency_penalty: unsupportedUnless('frequency_penalty', zero),
  n: unsupportedUnless('n', (n) => n === 1, " with a value other than 1; send one request per completion"),
};

const CHAT_UNSUPPORTED = {
  ...COMMON_UNSUPPORTED,
  response_format: unsupportedUnless('response_format', (f) => (f as { type?: unknown }).type === 'text', ' (only { "type": "text" })'),
  tools: unsupportedUnless('tools', empty),
  tool_choice: unsupportedUnless('tool_choice', (c) => c === 'none'),
  parallel_tool_calls: unsupportedUnless('parallel_tool_calls', () => true),
  functions: unsupportedUnless('functions', empty),
  function_call: unsupportedUnless('function_call', (c) => c === 'none'),
  modalities: unsupportedUnless('modalities', (m) => Array.isArray(m) && m.every((x) => x === 'text')),
  audio: unsupportedUnless('audio', () => false),
};

const COMPLETION_UNSUPPORTED = {
  ...COMMON_UNSUPPORTED,
  echo: unsupportedUnless('echo', no),
  best_of: unsupportedUnless('best_of', (n) => n === 1),
  suffix: unsupportedUnless('suffix', (s) => s === ''),
};

// --- supported fields --------------------------------------------------------------------------------

const number = (field: string, min: number, max: number) =>
  v.nullish(v.pipe(v.number(`'${field}' must be a number.`), v.minValue(min, `'${field}' must be at least ${min}.`), v.maxValue(max, `'${field}' must be at most ${max}.`)));

const integer = (field: string, min: number, max: number, tooLarge = `'${field}' must be at most ${max}.`) =>
  v.nullish(v.pipe(v.number(`'${field}' must be an integer.`), v.integer(`'${field}' must be an integer.`), v.minValue(min, `'${field}' must be at least ${min}.`), v.maxValue(max, tooLarge)));

const stopString = v.pipe(v.string(), v.nonEmpty(), v.maxLength(256));
const STOP_MESSAGE = "'stop' must be a string or an array of up to 4 non-empty strings (256 characters at most).";

function samplingFields(limits: Limits) {
  const tooMany = (field: string) => `'${field}' is larger than this server's limit of ${limits.maxTokens} tokens per request.`;
  return {
    model: v.pipe(v.string("'model' is required: the id of a model from GET /v1/models."), v.nonEmpty("'model' must not be empty.")),
    max_tokens: integer('max_tokens', 1, limits.maxTokens, tooMany('max_tokens')),
    max_completion_tokens: integer('max_completion_tokens', 1, limits.maxTokens, tooMany('max_completion_tokens')),
    temperature: number('temperature', 0, 2),
    top_p: number('top_p', 0, 1),
    seed: integer('seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
    stop: v.nullish(v.union([stopString, v.pipe(v.array(stopString), v.maxLength(4))], STOP_MESSAGE)),
    stream: v.nullish(v.boolean("'stream' must be true or false.")),
    stream_options: v.nullish(v.object({ include_usage: v.nullish(v.boolean("'stream_options.include_usage' must be true or false.")) }, "'stream_options' must be an object.")),
    recycle: v.nullish(
      v.pipe(
        v.object(
          {
            mode: v.picklist(DECODE_MODES, `'recycle.mode' must be one of ${DECODE_MODES.map((m) => `'${m}'`).join(', ')}.`),
            adaptive: v.nullish(v.boolean("'recycle.adaptive' must be true or false.")),
            draft_length: integer('recycle.draft_length', 2, MAX_DRAFTS),
          },
          "'recycle' must be an object such as { \"mode\": \"exact\" }.",
        ),
        v.forward(v.check((r) => r.draft_length == null || r.mode === 'chain', "'recycle.draft_length' applies to mode 'chain' only."), ['draft_length']),
      ),
    ),
  };
}

type SamplingInput = v.InferOutput<v.ObjectSchema<ReturnType<typeof samplingFields>, undefined>>;

function sampling(body: SamplingInput, defaultMaxTokens: number, logprobs: number | undefined): SamplingRequest {
  return {
    model: body.model,
    maxTokens: body.max_completion_tokens ?? body.max_tokens ?? defaultMaxTokens,
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    seed: body.seed ?? undefined,
    stop: body.stop == null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop,
    stream: body.stream ?? false,
    includeUsage: body.stream_options?.include_usage ?? false,
    recycleMode: body.recycle?.mode ?? 'off',
    recycleAdaptive: body.recycle?.adaptive ?? undefined,
    draftLength: body.recycle?.draft_length ?? undefined,
    logprobs,
  };
}

/** The SDK's limit on alternatives per token (OpenAI's top_logprobs allows 20 too). */
const MAX_LOGPROBS = 20;

/**
 * Recycled tokens in `fast` mode are the head's guesses, which the full model never scores: no log-probabilities.
 * Checked here, not only by the SDK, so that the error names the field.
 */
const notFast = (body: { logprobs?: unknown; recycle?: { mode: RecycleMode } | null }) => body.logprobs == null || body.logprobs === false || body.recycle?.mode !== 'fast';
const NOT_FAST_MESSAGE =
  "'logprobs' is not available with recycle.mode 'fast': its recycled tokens are the head's guesses, which the full model never scores. Use 'exact' (the same tokens as 'off', with their log-probabilities) or 'off'.";

const PROMPT_MESSAGE = "'prompt' is required: a string, an array with one string, or an array of token ids.";
const prompt = v.union(
  [v.string(), v.pipe(v.tuple([v.string()]), v.transform(([text]) => text)), v.pipe(v.array(v.pipe(v.number(), v.integer(), v.minValue(0))), v.nonEmpty("'prompt' must not be empty."))],
  PROMPT_MESSAGE,
);

export function completionSchema(limits: Limits) {
  return v.pipe(
    v.object(
      { ...samplingFields(limits), ...COMPLETION_UNSUPPORTED, prompt, logprobs: integer('logprobs', 0, MAX_LOGPROBS) },
      'The request body must be a JSON object.',
    ),
    v.forward(v.check((body) => notFast(body), NOT_FAST_MESSAGE), ['logprobs']),
    // OpenAI's legacy completions default to 16 tokens.
    v.transform((body): CompletionRequest => ({ ...sampling(body, Math.min(16, limits.maxTokens), body.logprobs ?? undefined), prompt: body.prompt })),
  );
}

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool'] as const;
const textPart = v.object({ type: v.literal('text'), text: v.string() });
const CONTENT_MESSAGE = 'must be a string or an array of text parts';
const toolCall = v.object(
  {
    id: v.optional(v.string()),
    type: v.optional(v.literal('function')),
    function: v.object({ name: v.string(), arguments: v.string() }),
  },
  "must be { id, type: 'function', function: { name, arguments } }",
);

/**
 * OpenAI's message → the SDK's. The SDK's chat() renders it with the model's template (tool calls and tool
 * results included) and checks the rest; here only the shape and OpenAI's field names.
 */
const message = v.pipe(
  v.object(
    {
      role: v.picklist([...ROLES, 'function'], "must be 'system', 'developer', 'user', 'assistant' or 'tool'"),
      // null: an assistant turn that only called tools (OpenAI clients send it back as is).
      content: v.nullish(v.union([v.string(), v.array(textPart)], CONTENT_MESSAGE)),
      tool_calls: v.nullish(v.array(toolCall)),
      tool_call_id: v.nullish(v.string()),
      name: v.nullish(v.string()),
    },
    'must be an object { role, content }',
  ),
  v.forward(unsupportedCheck((m) => m.role !== 'function', "role 'function' (deprecated by OpenAI) is not supported; send tool calls and 'tool' messages"), ['role']),
  v.forward(v.check((m) => m.content != null || m.role === 'assistant', CONTENT_MESSAGE), ['content']),
  v.forward(v.check((m) => m.role !== 'tool' || typeof m.tool_call_id === 'string', "is required in a 'tool' message: the id of the call it answers"), ['tool_call_id']),
  v.transform((m): ChatMessage => {
    const toolCalls = m.tool_calls?.length ? m.tool_calls : undefined;
    return {
      role: m.role as ChatMessage['role'],
      // The SDK takes null only beside tool calls; an empty assistant turn otherwise renders as ''.
      content: m.content ?? (toolCalls ? null : ''),
      ...(toolCalls && { toolCalls }),
      ...(m.tool_call_id != null && { toolCallId: m.tool_call_id }),
      ...(m.name != null && { name: m.name }),
    };
  }),
);

export function chatSchema(limits: Limits) {
  return v.pipe(
    v.object(
      {
        ...samplingFields(limits),
        ...CHAT_UNSUPPORTED,
        logprobs: v.nullish(v.boolean("'logprobs' must be true or false.")),
        top_logprobs: integer('top_logprobs', 0, MAX_LOGPROBS),
        messages: v.pipe(v.array(message, "'messages' is required: a non-empty array of { role, content }."), v.nonEmpty("'messages' must not be empty.")),
      },
      'The request body must be a JSON object.',
    ),
    v.forward(
      v.check((body) => body.logprobs === true || !body.top_logprobs, "'top_logprobs' needs 'logprobs': true."),
      ['top_logprobs'],
    ),
    v.forward(v.check((body) => notFast(body), NOT_FAST_MESSAGE), ['logprobs']),
    v.transform((body): ChatRequest => ({ ...sampling(body, limits.maxTokens, body.logprobs ? (body.top_logprobs ?? 0) : undefined), messages: body.messages })),
  );
}

// --- /v1/embeddings --------------------------------------------------------------------------------

export type EmbeddingInput = string | number[] | (string | number[])[];

export interface EmbeddingRequest {
  model: string;
  input: EmbeddingInput;
  encodingFormat: 'float' | 'base64';
  /** Checked against the model's width once it is known: only that one is supported. */
  dimensions?: number;
}

const INPUT_MESSAGE = "'input' is required: a non-empty string, an array of them, an array of token ids, or an array of token-id arrays.";
const NOT_EMPTY = 'must not be empty';
const TOKEN_ID = 'must be a token id: an integer from 0';
const inputText = v.pipe(v.string(), v.nonEmpty(NOT_EMPTY));
const tokenIds = v.pipe(v.array(v.pipe(v.number(), v.integer(TOKEN_ID), v.minValue(0, TOKEN_ID))), v.nonEmpty(NOT_EMPTY));
const embeddingInput = v.union([inputText, v.pipe(v.array(inputText), v.nonEmpty(NOT_EMPTY)), tokenIds, v.pipe(v.array(tokenIds), v.nonEmpty(NOT_EMPTY))], INPUT_MESSAGE);

/** Whether `input` is a list of inputs (texts or token-id arrays) rather than one text or one array of ids. */
export const isInputList = (input: EmbeddingInput): input is (string | number[])[] => typeof input !== 'string' && input.some((item) => typeof item !== 'number');
const inputCount = (input: EmbeddingInput) => (isInputList(input) ? input.length : 1);

/** OpenAI's embeddings request; `user` (and other unknown fields) are ignored. */
export function embeddingSchema(limits: Limits) {
  return v.pipe(
    v.object(
      {
        model: samplingFields(limits).model,
        input: embeddingInput,
        encoding_format: v.nullish(v.picklist(['float', 'base64'], "'encoding_format' must be 'float' or 'base64'.")),
        dimensions: integer('dimensions', 1, Number.MAX_SAFE_INTEGER),
      },
      'The request body must be a JSON object.',
    ),
    v.forward(
      v.check((body) => inputCount(body.input) <= limits.maxEmbeddingInputs, `'input' has more items than this server embeds in one request (${limits.maxEmbeddingInputs}); split it.`),
      ['input'],
    ),
    v.transform((body): EmbeddingRequest => ({ model: body.model, input: body.input, encodingFormat: body.encoding_format ?? 'float', dimensions: body.dimensions ?? undefined })),
  );
}

// --- from valibot's issues to OpenAI's error ---------------------------------------------------------

/** `messages[0].content` from valibot's path. */
function paramOf(issue: v.BaseIssue<unknown>): string | null {
  let param = '';
  for (const item of issue.path ?? []) {
    const key = (item as { key?: unknown }).key;
    param += typeof key === 'number' ? `[${key}]` : `${param ? '.' : ''}${String(key)}`;
  }
  return param || null;
}

/** The most specific issue: a union's or a message's own inner issue, not its summary. */
function deepest(issue: v.BaseIssue<unknown>): v.BaseIssue<unknown> {
  return issue.issues?.length === 1 ? deepest(issue.issues[0]!) : issue;
}

export function issueToError(first: v.BaseIssue<unknown>): OpenAIError {
  const issue = deepest(first);
  const param = paramOf(issue) ?? paramOf(first);
  if (unsupportedChecks.has(issue.requirement as object)) return badRequest(issue.message, param, 'unsupported_parameter');
  const missing = issue.kind === 'schema' && issue.input === undefined;
  if (param === null && issue.kind === 'schema') return badRequest(issue.message, null, 'invalid_json');
  // Messages of nested fields name only their problem; the path says where.
  const message = /^'/.test(issue.message) || /^The /.test(issue.message) ? issue.message : `'${param}' ${issue.message}.`;
  return badRequest(message, param, missing ? 'missing_required_parameter' : issue.kind === 'schema' ? 'invalid_type' : 'invalid_value');
}

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** Hono's validator middleware with a schema: a JSON body that fails it is a 400 in OpenAI's shape. */
export function jsonBody<S extends v.GenericSchema>(schema: S): MiddlewareHandler<object, string, { in: { json: v.InferInput<S> }; out: { json: v.InferOutput<S> } }> {
  const validate = vValidator('json', schema, async (result, c) => {
    if (result.success) return;
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim();
    // The validator reads only JSON bodies: say so rather than report every field missing.
    if (!JSON_TYPE.test(type)) throw badRequest(`Send the body as JSON with "Content-Type: application/json" (got ${type ? `"${type}"` : 'none'}).`, null, 'invalid_json');
    // An array passes valibot's object check, and would read as an object with every field missing.
    if (Array.isArray(await c.req.json())) throw badRequest('The request body must be a JSON object.', null, 'invalid_json');
    throw issueToError(result.issues[0]);
  });
  return (async (c, next) => {
    let valid = false;
    try {
      return await validate(c, async () => {
        valid = true;
        await next();
      });
    } catch (err) {
      // The validator's own 400 is a body that is not JSON at all.
      if (!valid && err instanceof HTTPException && !(err instanceof OpenAIError)) {
        throw badRequest('The request body is not valid JSON. Send a JSON object with "Content-Type: application/json".', null, 'invalid_json');
      }
      throw err;
    }
  }) as MiddlewareHandler;
}
