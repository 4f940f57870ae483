import { describe, expect, it } from 'vitest';
import { errorOf, json, setup, sseEvents } from '../test-support/app.js';

const user = (content: unknown) => [{ role: 'user', content }];
const chunksOf = async (res: Response) => (await sseEvents(res)).slice(0, -1).map((e) => JSON.parse(e));

describe('POST /v1/chat/completions', () => {
  it("gives the conversation to the SDK's chat() in its own shape, and answers as the assistant", async () => {
    const { post, model } = setup();
    const messages = [
      { role: 'developer', content: 'Brief.' },
      { role: 'user', content: [{ type: 'text', text: 'Rain' }, { type: 'text', text: 'in Paris?' }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'rain', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'no' },
      { role: 'assistant', content: null },
      { role: 'user', content: 'Thanks', name: 'ann' },
    ];
    const res = await post('/v1/chat/completions', { model: 'stub', max_completion_tokens: 2, temperature: 0, seed: 7, stop: 'zz', messages });
    expect(model.chats[0].messages).toEqual([
      { role: 'developer', content: 'Brief.' },
      { role: 'user', content: [{ type: 'text', text: 'Rain' }, { type: 'text', text: 'in Paris?' }] },
      { role: 'assistant', content: null, toolCalls: [{ id: 'c1', type: 'function', function: { name: 'rain', arguments: '{}' } }] },
      { role: 'tool', content: 'no', toolCallId: 'c1' },
      // An assistant turn with neither content nor tool calls is an empty one.
      { role: 'assistant', content: '' },
      { role: 'user', content: 'Thanks', name: 'ann' },
    ]);
    expect(model.chats[0].options).toMatchObject({ maxTokens: 2, temperature: 0, seed: 7, stop: ['zz'], decode: { mode: 'off' }, logprobs: undefined });
    const body = await json(res);
    expect(body).toMatchObject({ object: 'chat.completion', choices: [{ message: { role: 'assistant', content: 'developer:w0 developer:w1 ', refusal: null }, logprobs: null, finish_reason: 'length' }] });
    expect(body.choices[0].message).not.toHaveProperty('reasoning_content');
    expect(body.id).toMatch(/^chatcmpl-/);
  });

  it('streams deltas: role first, then content, then an empty delta with finish_reason; each token chunk says where the token came from', async () => {
    const { post } = setup();
    const chunks = await chunksOf(await post('/v1/chat/completions', { model: 'stub', max_tokens: 3, stream: true, recycle: { mode: 'exact' }, messages: user('q') }));
    expect(chunks.map((c) => c.choices[0].delta)).toEqual([{ role: 'assistant', content: 'user:w0 ' }, { content: 'user:w1 ' }, { content: 'user:w2 ' }, {}]);
    expect(chunks.slice(0, 3).map((c) => c.recyclegpt)).toEqual([{ source: 'pass' }, { source: 'recycled' }, { source: 'pass' }]);
    expect(chunks[3].recyclegpt).toMatchObject({ decode_mode: 'exact', acceptance_rate: 0.5 });
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
  });

  it("reports a reasoning block apart, as reasoning_content", async () => {
    const { post } = setup({ reasoningTokens: 2 });
    const whole = await json(await post('/v1/chat/completions', { model: 'stub', max_tokens: 3, messages: user('q') }));
    expect(whole.choices[0].message).toMatchObject({ content: 'user:w2 ', reasoning_content: 'user:w0 user:w1 ' });
    const chunks = await chunksOf(await post('/v1/chat/completions', { model: 'stub', max_tokens: 3, stream: true, messages: user('q') }));
    expect(chunks.map((c) => c.choices[0].delta)).toEqual([{ role: 'assistant', reasoning_content: 'user:w0 ' }, { reasoning_content: 'user:w1 ' }, { content: 'user:w2 ' }, {}]);
  });

  it('gives each token its log-probability, bytes and top_logprobs, streamed and not', async () => {
    const { post } = setup();
    const request = { model: 'stub', max_tokens: 2, logprobs: true, top_logprobs: 2, recycle: { mode: 'exact' }, messages: user('q') };
    const whole = await json(await post('/v1/chat/completions', request));
    const bytes = (text: string) => Array.from(new TextEncoder().encode(text));
    const first = { token: 'user:w0 ', logprob: -0.25, bytes: bytes('user:w0 ') };
    expect(whole.choices[0].logprobs).toEqual({
      content: [
        { ...first, top_logprobs: [first, { token: 'alt0', logprob: -1.25, bytes: bytes('alt0') }] },
        { token: 'user:w1 ', logprob: -0.5, bytes: bytes('user:w1 '), top_logprobs: [{ token: 'user:w1 ', logprob: -0.5, bytes: bytes('user:w1 ') }, { token: 'alt0', logprob: -1.5, bytes: bytes('alt0') }] },
      ],
      refusal: null,
    });
    const chunks = await chunksOf(await post('/v1/chat/completions', { ...request, stream: true }));
    expect(chunks.slice(0, 2).flatMap((c) => c.choices[0].logprobs.content)).toEqual(whole.choices[0].logprobs.content);
    expect(chunks[2].choices[0].logprobs).toBeNull();
    // logprobs alone: no alternatives.
    const plain = await json(await post('/v1/chat/completions', { ...request, top_logprobs: undefined }));
    expect(plain.choices[0].logprobs.content[0].top_logprobs).toEqual([]);
  });

  it('accepts the neutral values of unsupported fields', async () => {
    const neutral = { logprobs: false, top_logprobs: 0, response_format: { type: 'text' }, tools: [], tool_choice: 'none', n: 1, presence_penalty: 0 };
    const res = await setup().post('/v1/chat/completions', { model: 'stub', max_tokens: 1, messages: user('a'), ...neutral });
    expect(res.status).toBe(200);
    expect((await json(res)).choices[0].logprobs).toBeNull();
  });

  it('reports the prompt tokens a later turn reused from the one before', async () => {
    const { post } = setup();
    const turn1 = await json(await post('/v1/chat/completions', { model: 'stub', max_tokens: 2, messages: user('Hello') }));
    expect(turn1.recyclegpt.reused_prompt_tokens).toBe(0);
    const history = [...user('Hello'), { role: 'assistant', content: turn1.choices[0].message.content }, ...user('More')];
    const turn2 = await json(await post('/v1/chat/completions', { model: 'stub', max_tokens: 2, messages: history }));
    // The stub's prompt is its characters: everything up to the answer's text matches the first turn.
    expect(turn2.recyclegpt.reused_prompt_tokens).toBe('user: Hello\nassistant:'.length);
  });
});

describe('POST /v1/chat/completions refuses', () => {
  const cases: [string, unknown, Partial<{ code: string; param: string }>][] = [
    ['missing messages', { model: 'stub' }, { param: 'messages', code: 'missing_required_parameter' }],
    ['empty messages', { model: 'stub', messages: [] }, { param: 'messages' }],
    ['a bad role', { model: 'stub', messages: [{ role: 'wizard', content: 'x' }] }, { param: 'messages[0].role' }],
    ['image content', { model: 'stub', messages: user([{ type: 'image_url', image_url: { url: 'x' } }]) }, { param: 'messages[0].content' }],
    ['a user turn without content', { model: 'stub', messages: user(null) }, { param: 'messages[0].content' }],
    ['a tool message without tool_call_id', { model: 'stub', messages: [...user('x'), { role: 'tool', content: '1' }] }, { param: 'messages[1].tool_call_id' }],
    ['a malformed tool call', { model: 'stub', messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c' }] }] }, { param: 'messages[0].tool_calls[0].function' }],
    ['max_completion_tokens past the limit', { model: 'stub', messages: user('x'), max_completion_tokens: 1000 }, { param: 'max_completion_tokens' }],
    ['top_logprobs without logprobs', { model: 'stub', messages: user('x'), top_logprobs: 2 }, { param: 'top_logprobs' }],
    ['top_logprobs past 20', { model: 'stub', messages: user('x'), logprobs: true, top_logprobs: 21 }, { param: 'top_logprobs' }],
    ['logprobs in fast mode (its recycled tokens have none)', { model: 'stub', messages: user('x'), logprobs: true, recycle: { mode: 'fast' } }, { param: 'logprobs', code: 'invalid_value' }],
  ];
  it.each(cases)('%s with a 400 naming the field', async (_name, body, error) => {
    const res = await setup().post('/v1/chat/completions', body);
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ type: 'invalid_request_error', ...error });
  });

  it('a conversation longer than the context, with context_length_exceeded on messages', async () => {
    const res = await setup({ contextLength: 20 }).post('/v1/chat/completions', { model: 'stub', messages: user('a question that is too long') });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'context_length_exceeded', param: 'messages' });
  });

  it("logprobs in fast mode, with a message that says what to use instead", async () => {
    const res = await setup().post('/v1/chat/completions', { model: 'stub', messages: user('x'), logprobs: true, recycle: { mode: 'fast' } });
    expect((await errorOf(res)).message).toMatch(/'exact'/);
  });

  const unsupported: [string, unknown, unknown?][] = [
    ['response_format', { response_format: { type: 'json_object' } }],
    ['tools', { tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }],
    ['tool_choice', { tool_choice: 'auto' }],
    ['logit_bias', { logit_bias: { 1: 5 } }],
    ['presence_penalty', { presence_penalty: 1 }],
    ['frequency_penalty', { frequency_penalty: 1 }],
    ['n', { n: 3 }],
    ['messages[1].role', { messages: [...user('x'), { role: 'function', name: 'f', content: '42' }] }],
  ];
  it.each(unsupported)('%s (it would change the answer) with unsupported_parameter', async (param, fields) => {
    const res = await setup().post('/v1/chat/completions', { model: 'stub', messages: user('x'), ...(fields as object) });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'unsupported_parameter', param });
  });
});
