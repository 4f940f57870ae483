import { badRequest } from './errors.js';

/** The decode modes a request may ask for in the `recycle` extension field. */
const DECODE_MODES = ['off', 'fast', 'exact', 'chain'] as const;
type RecycleMode = (typeof DECODE_MODES)[number];

export interface Limits {
  /** Largest max_tokens a request may ask for. */
  maxTokens: number;
  /** Largest prompt, in tokens after templating. */
  maxPromptTokens: number;
  /** Generations in flight (running or queued) before new ones get 429. Unlimited when absent. */
  maxConcurrent?: number;
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
}

export interface CompletionRequest extends SamplingRequest {
  prompt: string | number[];
}

export type ChatRole = 'system' | 'user' | 'assistant';
export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatRequest extends SamplingRequest {
  messages: ChatMessage[];
}

type Json = Record<string, unknown>;

/** Parses the raw body text; anything but a JSON object is a 400. */
export function parseJsonObject(text: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest('The request body is not valid JSON. Send a JSON object with Content-Type: application/json.', null, 'invalid_json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('The request body must be a JSON object.', null, 'invalid_json');
  }
  return value as Json;
}

function optionalNumber(body: Json, key: string, min: number, max: number): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw badRequest(`'${key}' must be a number from ${min} to ${max}.`, key);
  }
  return value;
}

function optionalInteger(body: Json, key: string, min: number, max: number): number | undefined {
  const value = optionalNumber(body, key, min, max);
  if (value !== undefined && !Number.isInteger(value)) throw badRequest(`'${key}' must be an integer.`, key);
  return value;
}

function optionalBoolean(body: Json, key: string): boolean | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw badRequest(`'${key}' must be true or false.`, key);
  return value;
}

function requiredString(body: Json, key: string): string {
  const value = body[key];
  if (typeof value !== 'string' || value === '') throw badRequest(`'${key}' is required and must be a non-empty string.`, key, value === undefined ? 'missing_required_parameter' : 'invalid_type');
  return value;
}

function parseStop(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === 'string' && s !== '' && s.length <= 256)) {
    throw badRequest("'stop' must be a string or an array of up to 4 non-empty strings (256 characters at most).", 'stop');
  }
  return list as string[];
}

function parseRecycle(value: unknown): RecycleMode {
  if (value === undefined || value === null) return 'off';
  const mode = typeof value === 'object' && !Array.isArray(value) ? (value as Json).mode : undefined;
  if (!DECODE_MODES.includes(mode as RecycleMode)) {
    throw badRequest(`'recycle.mode' must be one of ${DECODE_MODES.map((m) => `'${m}'`).join(', ')}.`, 'recycle.mode');
  }
  return mode as RecycleMode;
}

function parseSampling(body: Json, limits: Limits, defaultMaxTokens: number): SamplingRequest {
  const n = optionalInteger(body, 'n', 1, 1_000_000);
  if (n !== undefined && n !== 1) throw badRequest("Only 'n': 1 is supported; send one request per completion.", 'n');
  // max_completion_tokens is the newer name; either one may carry the limit.
  const maxKey = body.max_completion_tokens !== undefined && body.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const requested = optionalInteger(body, maxKey, 1, Number.MAX_SAFE_INTEGER);
  if (requested !== undefined && requested > limits.maxTokens) {
    throw badRequest(`'${maxKey}' is ${requested}, but this server generates at most ${limits.maxTokens} tokens per request.`, maxKey);
  }
  const streamOptions = body.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && (typeof streamOptions !== 'object' || Array.isArray(streamOptions))) {
    throw badRequest("'stream_options' must be an object.", 'stream_options');
  }
  return {
    model: requiredString(body, 'model'),
    maxTokens: requested ?? Math.min(defaultMaxTokens, limits.maxTokens),
    temperature: optionalNumber(body, 'temperature', 0, 2),
    topP: optionalNumber(body, 'top_p', 0, 1),
    seed: optionalInteger(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
    stop: parseStop(body.stop),
    stream: optionalBoolean(body, 'stream') ?? false,
    includeUsage: streamOptions ? optionalBoolean(streamOptions as Json, 'include_usage') ?? false : false,
    recycleMode: parseRecycle(body.recycle),
  };
}

function parsePrompt(value: unknown): string | number[] {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length === 1 && typeof value[0] === 'string') return value[0];
  if (Array.isArray(value) && value.length > 0 && value.every((id) => Number.isInteger(id) && id >= 0)) return value as number[];
  throw badRequest("'prompt' is required: a string, an array with one string, or an array of token ids.", 'prompt', value === undefined ? 'missing_required_parameter' : 'invalid_type');
}

export function parseCompletionRequest(body: Json, limits: Limits): CompletionRequest {
  // OpenAI's legacy completions default to 16 tokens.
  return { ...parseSampling(body, limits, 16), prompt: parsePrompt(body.prompt) };
}

const ROLES: Record<string, ChatRole> = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' };

function parseContent(value: unknown, index: number): string {
  if (typeof value === 'string') return value;
  // Content parts: only text parts can reach a text model.
  if (Array.isArray(value) && value.every((p) => typeof p === 'object' && p !== null && p.type === 'text' && typeof p.text === 'string')) {
    return value.map((p: { text: string }) => p.text).join('');
  }
  throw badRequest(`'messages[${index}].content' must be a string or an array of text parts.`, `messages[${index}].content`);
}

function parseMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw badRequest("'messages' is required: a non-empty array of { role, content }.", 'messages', value === undefined ? 'missing_required_parameter' : 'invalid_type');
  }
  return value.map((message: unknown, index) => {
    const m = (typeof message === 'object' && message !== null ? message : {}) as Json;
    const role = typeof m.role === 'string' ? ROLES[m.role] : undefined;
    if (!role) throw badRequest(`'messages[${index}].role' must be 'system', 'developer', 'user' or 'assistant'.`, `messages[${index}].role`);
    return { role, content: parseContent(m.content, index) };
  });
}

export function parseChatRequest(body: Json, limits: Limits): ChatRequest {
  return { ...parseSampling(body, limits, limits.maxTokens), messages: parseMessages(body.messages) };
}
