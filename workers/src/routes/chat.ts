import type { Output, TokenLogprob } from '../generation.js';
import { chatSchema, type ChatRequest } from '../schema.js';
import { generationRoute, type RouteDeps } from './generate.js';

/** OpenAI's chat logprobs: each token with its bytes and its most likely alternatives. */
function logprobs(output: Output) {
  if (!output.logprobs) return null;
  const entry = (t: Omit<TokenLogprob, 'top' | 'at'>) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes });
  return { content: output.logprobs.map((t) => ({ ...entry(t), top_logprobs: t.top.map(entry) })), refusal: null };
}

/** A reasoning block's text goes apart, as `reasoning_content` (the field llama.cpp's and vLLM's servers use). */
const reasoning = (output: Output) => (output.reasoning ? { reasoning_content: output.reasoning } : {});

/** A chunk's delta: the role first; content unless the chunk ends the stream or carries only reasoning. */
function delta(output: Output, finish: unknown, first: boolean) {
  const content = !finish && (output.text !== '' || !output.reasoning);
  return { ...(first && { role: 'assistant' }), ...(content && { content: output.text }), ...reasoning(output) };
}

/** POST /v1/chat/completions: the messages go to the SDK's chat(), which renders them with the model's own template. */
export function chatRoutes(deps: RouteDeps) {
  return generationRoute<ChatRequest>(deps, {
    path: '/v1/chat/completions',
    schema: chatSchema,
    shape: {
      idPrefix: 'chatcmpl',
      object: 'chat.completion',
      chunkObject: 'chat.completion.chunk',
      choice: (output, finish) => ({
        index: 0,
        message: { role: 'assistant', content: output.text, refusal: null, ...reasoning(output) },
        logprobs: logprobs(output),
        finish_reason: finish,
      }),
      delta: (output, finish, first) => ({
        index: 0,
        delta: delta(output, finish, first),
        logprobs: logprobs(output),
        finish_reason: finish,
      }),
    },
    start: (request, model, options) => model.chat(request.messages, options),
    promptParam: 'messages',
  });
}
