import { completionSchema, type CompletionRequest } from '../schema.js';
import { generationRoute, type RouteDeps } from './generate.js';

/** POST /v1/completions: raw text (or token ids) in, text out, no template. */
export function completionRoutes(deps: RouteDeps) {
  return generationRoute<CompletionRequest>(deps, {
    path: '/v1/completions',
    schema: completionSchema,
    shape: {
      idPrefix: 'cmpl',
      object: 'text_completion',
      chunkObject: 'text_completion',
      choice: (text, finish) => ({ index: 0, text, logprobs: null, finish_reason: finish }),
      delta: (text, finish) => ({ index: 0, text, logprobs: null, finish_reason: finish }),
    },
    prompt: (request) => ({ prompt: request.prompt, parseSpecial: false, promptParam: 'prompt' }),
  });
}
