import { Hono } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import type { CpuBudget } from './budget.js';
import { OpenAIError, onError } from './errors.js';
import { playgroundHtml } from './playground.js';
import type { ModelProvider } from './provider.js';
import { TurnQueue } from './queue.js';
import { chatRoutes } from './routes/chat.js';
import { completionRoutes } from './routes/completions.js';
import { embeddingRoutes } from './routes/embeddings.js';
import { healthRoutes } from './routes/health.js';
import { modelRoutes } from './routes/models.js';
import type { Limits } from './schema.js';

export { CpuBudget, costsFromSize, type CpuCosts } from './budget.js';
export type { ModelCard, ModelProvider, ModelState, ModelEntry } from './provider.js';
export { lazyModels } from './provider.js';
export type { Limits } from './schema.js';

export interface AppOptions {
  models: ModelProvider;
  /** When apiKey is set, /v1/* needs `Authorization: Bearer <apiKey>`. */
  auth?: { apiKey?: string };
  limits?: Partial<Limits>;
  /** Cross-origin access to /v1/*; off unless an origin (or list, or '*') is given. */
  cors?: { origin: string | string[] };
  /** The CPU a request may spend (Cloudflare's per-request limit); unlimited when absent. */
  budget?: CpuBudget;
}

export const DEFAULT_LIMITS: Limits = { maxTokens: 512, maxPromptTokens: 2048, maxQueue: 8, maxEmbeddingInputs: 32 };

/** Largest accepted request body; far above any prompt that passes maxPromptTokens, far below memory trouble. */
const MAX_BODY_BYTES = 1 << 20;

/** The OpenAI-compatible HTTP API as a Hono app; runs unchanged on Workers, Node, Deno and Bun. */
export function createApp(options: AppOptions): Hono {
  const limits: Limits = { ...DEFAULT_LIMITS, ...definedOnly(options.limits ?? {}) };
  const queues = new Map<string, TurnQueue>();
  const queue = (id: string) => queues.get(id) ?? queues.set(id, new TurnQueue(limits.maxQueue)).get(id)!;
  const deps = { models: options.models, limits, queue, budget: options.budget };

  const app = new Hono();
  app.onError(onError);
  // Answered, not thrown: Hono does not pass an error thrown here to onError, and it would go unhandled.
  app.notFound((c) => onError(new OpenAIError(404, 'not_found_error', `No route ${c.req.method} ${c.req.path}.`, null, 'unknown_url'), c));
  // The openai client sends x-stainless-* headers: allow whatever a preflight asks for (allowHeaders left empty).
  if (options.cors) app.use('/v1/*', cors({ origin: options.cors.origin, exposeHeaders: ['Retry-After'], maxAge: 600 }));
  if (options.auth?.apiKey) app.use('/v1/*', bearerAuth({ token: options.auth.apiKey }));
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new HTTPException(413, { message: `The request body is larger than ${MAX_BODY_BYTES} bytes.` });
      },
    }),
  );

  app.get('/', (c) => c.html(playgroundHtml));
  app.route('/', healthRoutes(options.models, queue));
  app.route('/', modelRoutes(options.models));
  app.route('/', completionRoutes(deps));
  app.route('/', chatRoutes(deps));
  app.route('/', embeddingRoutes(deps));
  return app;
}

function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>;
}
