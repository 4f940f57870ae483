import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { HttpError, toHttpError } from './errors.js';
import { InFlight } from './limits.js';
import { playgroundHtml } from './playground.js';
import type { ModelProvider } from './provider.js';
import { chatRoutes } from './routes/chat.js';
import { completionRoutes } from './routes/completions.js';
import { modelRoutes } from './routes/models.js';
import type { Limits } from './validate.js';

export type { ModelCard, ModelProvider } from './provider.js';
export { lazyModels } from './provider.js';
export type { Limits } from './validate.js';

export interface AppOptions {
  models: ModelProvider;
  /** When apiKey is set, /v1/* needs `Authorization: Bearer <apiKey>`. */
  auth?: { apiKey?: string };
  limits?: Partial<Limits>;
  /** Cross-origin access to /v1/*; off unless an origin (or list, or '*') is given. */
  cors?: { origin: string | string[] };
}

export const DEFAULT_LIMITS: Limits = { maxTokens: 512, maxPromptTokens: 2048 };

/** Largest accepted request body; far above any prompt that passes maxPromptTokens, far below memory trouble. */
const MAX_BODY_BYTES = 1 << 20;

/** Compares without stopping at the first differing byte, so timing does not reveal the key. */
function sameSecret(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ (y[i % y.length] ?? 0);
  return diff === 0;
}

/** The OpenAI-compatible HTTP API as a Hono app; runs unchanged on Workers, Node, Deno and Bun. */
export function createApp(options: AppOptions): Hono {
  const limits: Limits = {
    maxTokens: options.limits?.maxTokens ?? DEFAULT_LIMITS.maxTokens,
    maxPromptTokens: options.limits?.maxPromptTokens ?? DEFAULT_LIMITS.maxPromptTokens,
    maxConcurrent: options.limits?.maxConcurrent,
  };
  const deps = { models: options.models, limits, inFlight: new InFlight(limits.maxConcurrent) };
  const app = new Hono();

  app.onError((err, c) => {
    const httpError = toHttpError(err);
    // Failures the server did not expect are logged; deliberate HttpErrors already say what is wrong.
    if (!(err instanceof HttpError)) console.error(err);
    return c.json(httpError.body(), httpError.status);
  });
  app.notFound((c) => c.json(new HttpError(404, 'not_found_error', `No route ${c.req.method} ${c.req.path}.`, null, 'unknown_url').body(), 404));

  if (options.cors) app.use('/v1/*', cors({ origin: options.cors.origin, allowHeaders: ['Authorization', 'Content-Type'], maxAge: 600 }));
  const apiKey = options.auth?.apiKey;
  if (apiKey) {
    app.use('/v1/*', async (c, next) => {
      if (c.req.method === 'OPTIONS') return next();
      const header = c.req.header('authorization') ?? '';
      const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
      if (!sameSecret(given, apiKey)) {
        throw new HttpError(401, 'authentication_error', given ? 'Incorrect API key.' : 'Missing API key: send "Authorization: Bearer <key>".', null, 'invalid_api_key');
      }
      return next();
    });
  }
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new HttpError(413, 'invalid_request_error', `The request body is larger than ${MAX_BODY_BYTES} bytes.`, null, 'request_too_large');
      },
    }),
  );

  app.get('/', (c) => c.html(playgroundHtml));
  app.get('/healthz', (c) => c.json({ status: 'ok', models: options.models.list().map((m) => m.id) }));
  app.route('/', modelRoutes(options.models));
  app.route('/', completionRoutes(deps));
  app.route('/', chatRoutes(deps));
  return app;
}
