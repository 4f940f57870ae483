/// <reference types="@cloudflare/workers-types" />
/** The Cloudflare Worker: the app of app.ts over one model streamed from R2 (worker.ts is its entry). */
import { waitUntil } from 'cloudflare:workers';
import type { Hono } from 'hono';
import { loadModel, RecycleGPTError, type Model } from 'recyclegpt';
// Workers cannot compile WebAssembly from bytes at run time: the engine's two modules are bundled compiled, and the
// SDK runs the relaxed-SIMD one where workerd computes it exactly (it does), else the SIMD128 one.
import relaxed from 'recyclegpt/recyclegpt-relaxed.wasm';
import simd128 from 'recyclegpt/recyclegpt.wasm';
import { createApp, lazyModels } from './app.js';
import { CpuBudget, costsFromSize, PREFILL_SHARE } from './budget.js';
import { modelUnavailable, toOpenAIError } from './errors.js';

export interface Env {
  /** The R2 bucket holding the GGUF files. */
  MODELS: R2Bucket;
  /** Object key of the base model GGUF. */
  MODEL_KEY: string;
  /** Object key of the recycle head GGUF (optional: without it only recycle.mode 'off' works). */
  RECYCLE_KEY?: string;
  /** The id clients pass as `model`; default: MODEL_KEY without its extension. */
  MODEL_ID?: string;
  /** A line about the model for people (GET /v1/models and the playground show it). */
  MODEL_DESCRIPTION?: string;
  /** When set (as a secret), /v1/* needs `Authorization: Bearer <API_KEY>`. */
  API_KEY?: string;
  MAX_TOKENS?: string;
  MAX_PROMPT_TOKENS?: string;
  /** Requests that may wait while one generates; past it, 429. */
  MAX_QUEUE?: string;
  /** Most inputs in one /v1/embeddings request (each at most MAX_PROMPT_TOKENS tokens). */
  MAX_EMBEDDING_INPUTS?: string;
  /** KV cache capacity in tokens (memory grows with it). */
  CONTEXT_LENGTH?: string;
  /** Allowed CORS origin(s), comma-separated, or '*'; CORS is off when unset. */
  CORS_ORIGIN?: string;
  /** The CPU limit per request in ms: keep it equal to `[limits] cpu_ms`. Generations stop before it. */
  CPU_MS?: string;
  /** CPU ms per generated / prompt token; default: estimated from the model's size. */
  MS_PER_TOKEN?: string;
  PREFILL_MS_PER_TOKEN?: string;
  /** Memory the isolate may use (Workers: 128 MB); a model that cannot fit is refused before loading. */
  MEMORY_LIMIT_MB?: string;
}

/** What the Worker reads from the bucket: an R2Bucket is one; tests wrap it to inject faults. */
export interface ModelObjects {
  get(key: string): Promise<{ body: ReadableStream<Uint8Array>; size: number } | null>;
}

export interface WorkerOptions {
  /** Where the GGUF objects come from (default: the MODELS binding). */
  objects?: (env: Env) => ModelObjects;
}

/**
 * The isolate's JS heap besides WebAssembly memory: the SDK's tokenizer tables (10 MiB measured at a 49k vocabulary,
 * test/real-models/MEMORY.md), request buffers.
 */
export const JS_HEAP_BYTES = 16 << 20;

type ModelObject = NonNullable<Awaited<ReturnType<ModelObjects['get']>>>;

/** Streams the GGUF from R2 straight into WASM memory: the isolate never holds a second copy of the weights. */
async function loadFromR2(env: Env, objects: ModelObjects, budget: CpuBudget): Promise<Model> {
  const model = await objectBody(objects, env.MODEL_KEY);
  const recycle = env.RECYCLE_KEY ? await objectBody(objects, env.RECYCLE_KEY).catch((error) => Promise.reject((model.body.cancel(), error))) : undefined;
  const cancel = () => Promise.all([model.body.cancel(), recycle?.body.cancel()]).catch(() => {});
  const weights = model.size + (recycle?.size ?? 0);
  const limitBytes = (numberVar(env, 'MEMORY_LIMIT_MB') ?? 128) * 2 ** 20;
  const advice = 'Use a smaller or more quantized GGUF, or serve a larger model from Node (examples/node-server).';
  // The objects' sizes rule out a file before a byte is read; the SDK then checks weights + KV cache + scratch
  // from the GGUF header, before any weight is read.
  if (weights + JS_HEAP_BYTES > limitBytes) {
    await cancel();
    throw modelUnavailable(
      `The model needs more than ${mb(weights + JS_HEAP_BYTES)} MB (${mb(weights)} MB of weights, ${mb(JS_HEAP_BYTES)} MB of JS heap), more than the ${mb(limitBytes)} MB a Worker may use (MEMORY_LIMIT_MB). ${advice}`,
    );
  }
  if (!numberVar(env, 'MS_PER_TOKEN')) budget.estimate(costsFromSize(model.size));
  const memoryLimit = limitBytes - JS_HEAP_BYTES - (recycle?.size ?? 0);
  try {
    // A truncated object or a stream that fails midway rejects here; the SDK frees what it had built.
    return await loadModel(model.body, { wasm: { relaxed, simd128 }, recycle: recycle?.body, contextLength: intVar(env, 'CONTEXT_LENGTH'), memoryLimit });
  } catch (error) {
    await cancel();
    if (error instanceof RecycleGPTError && error.code === 'OUT_OF_MEMORY') {
      throw modelUnavailable(`In this Worker (MEMORY_LIMIT_MB ${mb(limitBytes)}, ${mb(JS_HEAP_BYTES)} MB kept for the JS heap) ${error.message}. Set a smaller CONTEXT_LENGTH, or: ${advice}`);
    }
    throw error;
  }
}

async function objectBody(objects: ModelObjects, key: string): Promise<ModelObject> {
  const object = await objects.get(key);
  if (!object) throw modelUnavailable(`The model object '${key}' is not in the MODELS bucket; upload it or fix MODEL_KEY/RECYCLE_KEY.`);
  return object;
}

const mb = (bytes: number) => Math.ceil(bytes / 2 ** 20);

type NumberVar = 'MAX_TOKENS' | 'MAX_PROMPT_TOKENS' | 'MAX_QUEUE' | 'MAX_EMBEDDING_INPUTS' | 'CONTEXT_LENGTH' | 'CPU_MS' | 'MS_PER_TOKEN' | 'PREFILL_MS_PER_TOKEN' | 'MEMORY_LIMIT_MB';

/** A number from a variable: unset or empty is undefined; a bad value fails every request with a message that names it. */
function numberVar(env: Env, name: NumberVar, { integer = false, min = Number.MIN_VALUE } = {}): number | undefined {
  const value = env[name];
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw modelUnavailable(`The variable ${name} is "${value}"; it must be ${integer ? 'an integer' : 'a number'} of at least ${min === Number.MIN_VALUE ? 'more than 0' : min}. Fix wrangler.toml.`);
  }
  return n;
}

const intVar = (env: Env, name: NumberVar, min = 1) => numberVar(env, name, { integer: true, min });

function buildApp(env: Env, objects: ModelObjects): Hono {
  const id = env.MODEL_ID || env.MODEL_KEY.replace(/\.gguf$/i, '');
  const decodeMs = numberVar(env, 'MS_PER_TOKEN');
  const budget = new CpuBudget(numberVar(env, 'CPU_MS') ?? 30_000, decodeMs ? { decodeMs, prefillMs: numberVar(env, 'PREFILL_MS_PER_TOKEN') ?? decodeMs * PREFILL_SHARE } : undefined);
  const load = () => {
    const loading = loadFromR2(env, objects, budget);
    // The load outlives the request that started it: other requests are waiting for it too.
    waitUntil(loading.catch(() => undefined));
    return loading;
  };
  return createApp({
    models: lazyModels([{ id, load, description: env.MODEL_DESCRIPTION || undefined }]),
    auth: { apiKey: env.API_KEY || undefined },
    limits: { maxTokens: intVar(env, 'MAX_TOKENS'), maxPromptTokens: intVar(env, 'MAX_PROMPT_TOKENS'), maxQueue: intVar(env, 'MAX_QUEUE', 0), maxEmbeddingInputs: intVar(env, 'MAX_EMBEDDING_INPUTS') },
    cors: env.CORS_ORIGIN ? { origin: env.CORS_ORIGIN === '*' ? '*' : env.CORS_ORIGIN.split(',').map((o) => o.trim()) } : undefined,
    budget,
  });
}

/** The Worker's handlers. One app (and so one model) per isolate: an isolate's bindings do not change between requests. */
export function createWorker(options: WorkerOptions = {}): ExportedHandler<Env> {
  let app: Hono | undefined;
  return {
    fetch(request, env, ctx) {
      try {
        app ??= buildApp(env, options.objects?.(env) ?? env.MODELS);
      } catch (error) {
        const answer = toOpenAIError(error);
        return Response.json(answer.body(), { status: answer.status });
      }
      return app.fetch(request, env, ctx);
    },
  };
}
