import { Hono } from 'hono';
import { renderChat } from '../chat-template.js';
import { respond, type ResponseShape } from '../generation.js';
import { parseChatRequest } from '../validate.js';
import { readJson, resolveModel, type RouteDeps } from './context.js';

const shape: ResponseShape = {
  idPrefix: 'chatcmpl',
  object: 'chat.completion',
  chunkObject: 'chat.completion.chunk',
  choice: (content, finish) => ({ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: finish }),
  delta: (content, finish, first) => ({
    index: 0,
    delta: first ? { role: 'assistant', content } : finish ? {} : { content },
    logprobs: null,
    finish_reason: finish,
  }),
};

/** POST /v1/chat/completions: messages rendered with the model's chat template (see chat-template.ts). */
export function chatRoutes(deps: RouteDeps): Hono {
  const app = new Hono();
  app.post('/v1/chat/completions', async (c) => {
    const request = parseChatRequest(await readJson(c), deps.limits);
    const model = await resolveModel(deps.models, request.model);
    const chat = renderChat(request.messages, model.info.chatTemplate);
    const job = { model, modelId: request.model, prompt: chat.prompt, parseSpecial: true, templateStop: chat.stop, request, promptParam: 'messages' };
    // `return await`: a rejected promise handed up unawaited counts as unhandled for a tick in workerd.
    return await respond(c, shape, job, deps.limits, deps.inFlight);
  });
  return app;
}
