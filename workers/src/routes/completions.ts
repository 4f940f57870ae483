import type { Output } from '../generation.js';
import { completionSchema, type CompletionRequest } from '../schema.js';
import { generationRoute, type RouteDeps } from './generate.js';

/**
 * OpenAI's legacy logprobs: parallel arrays. Each top_logprobs entry maps the most likely tokens' text to their
 * log-probability, with the chosen token added when it is not among them (so up to `logprobs` + 1 entries).
 * text_offset: where each token's text starts in the returned text.
 */
function logprobs(output: Output) {
  if (!output.logprobs) return null;
  const tokens = output.logprobs;
  return {
    tokens: tokens.map((t) => t.token),
    token_logprobs: tokens.map((t) => t.logprob),
    top_logprobs: tokens.map((t) => Object.fromEntries([...t.top, t].map((x) => [x.token, x.logprob]))),
    text_offset: tokens.map((t) => t.at),
  };
}

/** POST /v1/completions: raw text (or token ids) in, text out, no template. */
export function completionRoutes(deps: RouteDeps) {
  return generationRoute<CompletionRequest>(deps, {
    path: '/v1/completions',
    schema: completionSchema,
    shape: {
      idPrefix: 'cmpl',
      object: 'text_completion',
      chunkObject: 'text_completion',
      choice: (output, finish) => ({ index: 0, text: output.text, logprobs: logprobs(output), finish_reason: finish }),
      delta: (output, finish) => ({ index: 0, text: output.text, logprobs: logprobs(output), finish_reason: finish }),
    },
    start: (request, model, options) => model.generate(request.prompt, options),
    promptParam: 'prompt',
  });
}
