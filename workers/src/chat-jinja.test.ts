/// <reference types="@cloudflare/vitest-pool-workers/types" />
/**
 * The SDK's chat() inside workerd (Cloudflare's runtime): @huggingface/jinja renders a real template there (Qwen2.5's,
 * with tools, a tool call and a tool result) exactly as Python's Jinja2 does through Hugging Face's apply_chat_template
 * (the expected text below is that reference's output; sdk/src/chat/template-parity.test.ts compares the two in Node),
 * and a chat generation runs on the test model with that template added to its GGUF.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { loadModel, type ChatMessage } from 'recyclegpt';
import { chatFormat } from '../../sdk/src/chat/template.js';
import { toTemplateMessages, toTemplateTools } from '../../sdk/src/chat/messages.js';
import type { Tokenizer } from '../../sdk/src/tokenizer/types.js';
import engine from '../../sdk/wasm/recyclegpt.wasm';
import { QWEN_2_5 } from '../../test/fixtures/chat-templates.js';
import { withMetadata } from '../../test/fixtures/gguf-edit.js';

const { TEST_MODEL } = env as unknown as { TEST_MODEL: ArrayBuffer };

const messages: ChatMessage[] = [
  { role: 'system', content: 'Use tools when they help.' },
  { role: 'user', content: ' What is the weather in Paris? ' },
  { role: 'assistant', content: null, toolCalls: [{ id: 'call00001', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
  { role: 'tool', content: '{"temperature": 21}', toolCallId: 'call00001' },
];
const tools = [
  { type: 'function' as const, function: { name: 'get_weather', description: 'Current weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
];

const REFERENCE =
  '<|im_start|>system\nUse tools when they help.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' +
  'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n' +
  '{"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}\n' +
  '</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
  '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
  '<|im_start|>user\n What is the weather in Paris? <|im_end|>\n' +
  '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n' +
  '<|im_start|>user\n<tool_response>\n{"temperature": 21}\n</tool_response><|im_end|>\n<|im_start|>assistant\n';

describe('chat templates in workerd', () => {
  it("renders Qwen2.5's template with tools, a tool call and its result as Hugging Face's Jinja2 does", () => {
    // Qwen's vocabulary has no BOS in the template's sense; the test model's tiny one could not hold this prompt.
    const format = chatFormat(QWEN_2_5, { tokenText: () => '' } as unknown as Tokenizer);
    expect(format.renderer).toBe('template');
    const input = { messages: toTemplateMessages(messages), tools: toTemplateTools(tools), templateOptions: {} };
    expect(format.render(input).text).toBe(REFERENCE);
  });

  it("chats with the template in the model's GGUF", async () => {
    const gguf = withMetadata(new Uint8Array(TEST_MODEL), [{ key: 'tokenizer.chat_template', type: 'string', value: QWEN_2_5 }]);
    const model = await loadModel(gguf, { wasm: engine });
    const hello: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
    const rendered = model.renderChat(hello);
    expect(rendered.renderer).toBe('template');
    expect(rendered.text).toBe('<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    const answer = await model.completeChat(hello, { maxTokens: 4, temperature: 0 });
    expect(answer.tokens).toHaveLength(4);
    expect(answer.stats.promptTokens).toBe(rendered.ids.length);
    model.dispose();
  });
});
