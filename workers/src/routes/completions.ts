import { Hono } from 'hono';
import { respond, type ResponseShape } from '../generation.js';
import { parseCompletionRequest } from '../validate.js';
import { readJson, resolveModel, type RouteDeps } from './context.js';

const shape: ResponseShape = {
  idPrefix: 'cmpl',
  object: 'text_completion',
  chunkObject: 'text_completion',
  choice: (text, finish) => ({ index: 0, text, logprobs: null, finish_reason: finish }),
  delta: (text, finish) => ({ index: 0, text, logprobs: null, finish_reason: finish }),
};

/** POST /v1/completions: raw text in, text out, no template. */
export function completionRoutes(deps: RouteDeps): Hono {
  const app = new Hono();
  app.post('/v1/completions', async (c) => {
    const request = parseCompletionRequest(await readJson(c), deps.limits);
    const model = await resolveModel(deps.models, request.model);
    const job = { model, modelId: request.model, prompt: request.prompt, parseSpecial: false, request, promptParam: 'prompt' };
    // `return await`: a rejected promise handed up unawaited counts as unhandled for a tick in workerd.
    return await respond(c, shape, job, deps.limits, deps.inFlight);
  });
  return app;
}
