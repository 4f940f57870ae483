import { Hono } from 'hono';
import type { GenerateOptions, Model, TokenStream } from 'recyclegpt';
import type * as v from 'valibot';
import { inOwnContext } from '../own-context.js';
import { respond, type GenerationDeps, type ResponseShape } from '../generation.js';
import { modelNotFound, type ModelProvider } from '../provider.js';
import { jsonBody, type Limits, type SamplingRequest } from '../schema.js';

/** What every generation route needs from the app. */
export interface RouteDeps extends GenerationDeps {
  models: ModelProvider;
}

/** What tells /v1/completions and /v1/chat/completions apart. */
export interface GenerationRoute<R extends SamplingRequest> {
  path: string;
  schema(limits: Limits): v.GenericSchema<unknown, R>;
  shape: ResponseShape;
  /** The SDK call this request makes. */
  start(request: R, model: Model, options: GenerateOptions): TokenStream;
  /** The request field that holds the prompt. */
  promptParam: string;
}

/** One POST route that validates the body, finds the model (404 before anything loads) and generates. */
export function generationRoute<R extends SamplingRequest>(deps: RouteDeps, route: GenerationRoute<R>): Hono {
  return new Hono().post(route.path, jsonBody(route.schema(deps.limits)), async (c) => {
    const request = c.req.valid('json') as R;
    const known = deps.models.list().map((m) => m.id);
    if (!known.includes(request.model)) throw modelNotFound(request.model, known);
    const model = await inOwnContext(deps.models.get(request.model));
    const start = (options: GenerateOptions) => route.start(request, model, options);
    return respond(c, route.shape, { model, modelId: request.model, request, start, promptParam: route.promptParam }, deps);
  });
}
