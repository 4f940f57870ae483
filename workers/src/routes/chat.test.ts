import { describe, expect, it } from 'vitest';
import { errorOf, json, setup, sseEvents } from '../test-support/app.js';

const user = (content: unknown) => [{ role: 'user', content }];

describe('POST /v1/chat/completions', () => {
  it('renders the GGUF chat template and answers as the assistant', async () => {
    const chatml = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}";
    const { post, model } = setup({ chatTemplate: chatml });
    const seen: string[] = [];
    const generate = model.generate;
    model.generate = (prompt, options) => (seen.push(model.detokenize(prompt as number[])), generate(prompt, options));
    const res = await post('/v1/chat/completions', { model: 'stub', max_completion_tokens: 1, messages: [{ role: 'developer', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Hi' }] }] });
    const body = await json(res);
    expect(seen[0]).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(body).toMatchObject({ object: 'chat.completion', choices: [{ message: { role: 'assistant', content: '<|im_start|>systemw0 ', refusal: null }, finish_reason: 'length' }] });
    expect(body.id).toMatch(/^chatcmpl-/);
  });

  it('streams deltas: role first, then content, then an empty delta with finish_reason', async () => {
    const { post } = setup();
    const events = await sseEvents(await post('/v1/chat/completions', { model: 'stub', max_tokens: 2, stream: true, messages: user('q') }));
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.map((c) => c.choices[0].delta)).toEqual([{ role: 'assistant', content: 'User:w0 ' }, { content: 'User:w1 ' }, {}]);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
  });

  it('accepts an assistant turn with content null (one that only called tools) and the neutral values of unsupported fields', async () => {
    const messages = [...user('a'), { role: 'assistant', content: null }, ...user('b')];
    const neutral = { logprobs: false, top_logprobs: 0, response_format: { type: 'text' }, tools: [], tool_choice: 'none', n: 1, presence_penalty: 0 };
    const res = await setup().post('/v1/chat/completions', { model: 'stub', max_tokens: 1, messages, ...neutral });
    expect(res.status).toBe(200);
    expect((await json(res)).usage.prompt_tokens).toBeGreaterThan(10);
  });
});

describe('POST /v1/chat/completions refuses', () => {
  const cases: [string, unknown, Partial<{ code: string; param: string }>][] = [
    ['missing messages', { model: 'stub' }, { param: 'messages', code: 'missing_required_parameter' }],
    ['empty messages', { model: 'stub', messages: [] }, { param: 'messages' }],
    ['a bad role', { model: 'stub', messages: [{ role: 'wizard', content: 'x' }] }, { param: 'messages[0].role' }],
    ['image content', { model: 'stub', messages: user([{ type: 'image_url', image_url: { url: 'x' } }]) }, { param: 'messages[0].content' }],
    ['a user turn without content', { model: 'stub', messages: user(null) }, { param: 'messages[0].content' }],
    ['max_completion_tokens past the limit', { model: 'stub', messages: user('x'), max_completion_tokens: 1000 }, { param: 'max_completion_tokens' }],
  ];
  it.each(cases)('%s with a 400 naming the field', async (_name, body, error) => {
    const res = await setup().post('/v1/chat/completions', body);
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ type: 'invalid_request_error', ...error });
  });

  const unsupported: [string, unknown, unknown?][] = [
    ['logprobs', { logprobs: true }],
    ['top_logprobs', { top_logprobs: 3 }],
    ['response_format', { response_format: { type: 'json_object' } }],
    ['tools', { tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }],
    ['tool_choice', { tool_choice: 'auto' }],
    ['logit_bias', { logit_bias: { 1: 5 } }],
    ['presence_penalty', { presence_penalty: 1 }],
    ['frequency_penalty', { frequency_penalty: 1 }],
    ['n', { n: 3 }],
    ['messages[1].role', { messages: [...user('x'), { role: 'tool', tool_call_id: 'c1', content: '42' }] }],
    ['messages[1].tool_calls', { messages: [...user('x'), { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] }] }],
  ];
  it.each(unsupported)('%s (it would change the answer) with unsupported_parameter', async (param, fields) => {
    const res = await setup().post('/v1/chat/completions', { model: 'stub', messages: user('x'), ...(fields as object) });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'unsupported_parameter', param });
  });
});
