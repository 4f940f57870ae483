/// <reference types="@cloudflare/workers-types" />
import { waitUntil } from 'cloudflare:workers';
import { loadModel, type Model } from 'recyclegpt';
// Workers cannot compile WebAssembly from bytes at run time: the engine is bundled as a compiled module.
import engine from '../../sdk/wasm/recyclegpt.wasm';
import { createApp, lazyModels } from './app.js';
import { HttpError } from './errors.js';
import type { Hono } from 'hono';

export interface Env {
  /** The R2 bucket holding the GGUF files. */
  MODELS: R2Bucket;
  /** Object key of the base model GGUF. */
  MODEL_KEY: string;
  /** Object key of the recycle head GGUF (optional: without it only recycle.mode 'off' works). */
  RECYCLE_KEY?: string;
  /** The id clients pass as `model`; default: MODEL_KEY without its extension. */
  MODEL_ID?: string;
  /** When set (as a secret), /v1/* needs `Authorization: Bearer <API_KEY>`. */
  API_KEY?: string;
  MAX_TOKENS?: string;
  MAX_PROMPT_TOKENS?: string;
  MAX_CONCURRENT?: string;
  /** KV cache capacity in tokens (memory grows with it). */
  CONTEXT_LENGTH?: string;
  /** Allowed CORS origin(s), comma-separated, or '*'; CORS is off when unset. */
  CORS_ORIGIN?: string;
}

async function objectBody(env: Env, key: string): Promise<ReadableStream<Uint8Array>> {
  const object = await env.MODELS.get(key);
  if (!object) throw new HttpError(503, 'server_error', `The model object '${key}' is not in the MODELS bucket; upload it or fix MODEL_KEY/RECYCLE_KEY.`, null, 'model_unavailable');
  return object.body;
}

/** Streams the GGUF from R2 straight into WASM memory: the isolate never holds a second copy of the weights. */
async function loadFromR2(env: Env): Promise<Model> {
  const model = await objectBody(env, env.MODEL_KEY);
  const recycle = env.RECYCLE_KEY ? await objectBody(env, env.RECYCLE_KEY) : undefined;
  return loadModel(model, { wasm: engine, recycle, contextLength: optionalInt(env.CONTEXT_LENGTH) });
}

function optionalInt(value: string | undefined): number | undefined {
  const n = Number(value);
  return value && Number.isInteger(n) && n > 0 ? n : undefined;
}

function buildApp(env: Env): Hono {
  const id = env.MODEL_ID || env.MODEL_KEY.replace(/\.gguf$/i, '');
  const load = () => {
    const loading = loadFromR2(env);
    // The load outlives the request that started it: other requests are waiting for it too.
    waitUntil(loading.catch(() => undefined));
    return loading;
  };
  return createApp({
    models: lazyModels([{ id, load }]),
    auth: { apiKey: env.API_KEY || undefined },
    limits: { maxTokens: optionalInt(env.MAX_TOKENS), maxPromptTokens: optionalInt(env.MAX_PROMPT_TOKENS), maxConcurrent: optionalInt(env.MAX_CONCURRENT) },
    cors: env.CORS_ORIGIN ? { origin: env.CORS_ORIGIN === '*' ? '*' : env.CORS_ORIGIN.split(',').map((o) => o.trim()) } : undefined,
  });
}

/** One app (and so one model) per isolate; the bindings of an isolate do not change between requests. */
let app: Hono | undefined;

export default {
  fetch(request, env, ctx) {
    app ??= buildApp(env);
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
