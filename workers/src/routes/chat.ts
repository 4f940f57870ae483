import { renderChat } from '../chat-template.js';
import { chatSchema, type ChatRequest } from '../schema.js';
import { generationRoute, type RouteDeps } from './generate.js';

/** POST /v1/chat/completions: messages rendered with the model's chat template (see chat-template.ts). */
export function chatRoutes(deps: RouteDeps) {
  return generationRoute<ChatRequest>(deps, {
    path: '/v1/chat/completions',
    schema: chatSchema,
    shape: {
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
    },
    prompt(request, model) {
      const chat = renderChat(request.messages, model.info.chatTemplate);
      return { prompt: chat.prompt, parseSpecial: true, templateStop: chat.stop, promptParam: 'messages' };
    },
  });
}
