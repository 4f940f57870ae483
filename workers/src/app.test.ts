import { describe, expect, it } from 'vitest';
import { createApp, lazyModels } from './app.js';
import { stubModel } from './test-support/stub-model.js';

const KEY = 'test-key';
const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };

function setup(options: { chatTemplate?: string; maxConcurrent?: number; hasRecycleHead?: boolean } = {}) {
  // Each prompt's first word tags its tokens, so interleaved streams would show foreign tags.
  const model = stubModel({ tag: (prompt) => prompt.split(/\s/)[0] ?? '', chatTemplate: options.chatTemplate, hasRecycleHead: options.hasRecycleHead });
  let loads = 0;
  const app = createApp({
    models: lazyModels([{ id: 'stub', load: async () => (loads++, model) }]),
    auth: { apiKey: KEY },
    limits: { maxTokens: 64, maxPromptTokens: 100, maxConcurrent: options.maxConcurrent },
    cors: { origin: 'https://example.com' },
  });
  const post = (path: string, body: unknown, headers: Record<string, string> = auth) =>
    app.request(path, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { app, model, post, loads: () => loads };
}

/** Response bodies as loose JSON: the assertions check their shape. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = (res: Response): Promise<any> => res.json();

/** Splits an SSE body into its `data:` payloads. */
async function sseEvents(response: Response): Promise<string[]> {
  const text = await response.text();
  expect(text.endsWith('\n\n')).toBe(true);
  return text.trim().split('\n\n').map((block) => {
    expect(block.startsWith('data: ')).toBe(true);
    return block.slice(6);
  });
}

describe('GET routes', () => {
  it('lists models and answers health checks', async () => {
    const { app } = setup();
    const list = await json(await app.request('/v1/models', { headers: auth }));
    expect(list).toMatchObject({ object: 'list', data: [{ id: 'stub', object: 'model', owned_by: 'recyclegpt' }] });
    expect(await json(await app.request('/healthz'))).toEqual({ status: 'ok', models: ['stub'] });
    const page = await app.request('/');
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('RecycleGPT Edge');
  });

  it('answers unknown routes and models with OpenAI-style 404s', async () => {
    const { app } = setup();
    const route = await app.request('/v1/nothing', { headers: auth });
    expect(route.status).toBe(404);
    expect((await json(route)).error).toMatchObject({ type: 'not_found_error', code: 'unknown_url' });
    const model = await app.request('/v1/models/other', { headers: auth });
    expect(model.status).toBe(404);
    expect((await json(model)).error).toMatchObject({ code: 'model_not_found', param: 'model' });
  });
});

describe('POST /v1/completions', () => {
  it('completes text with usage, finish_reason and recycle stats', async () => {
    const { post } = setup();
    const res = await post('/v1/completions', { model: 'stub', prompt: 'hi there', max_tokens: 3, recycle: { mode: 'exact' } });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({
      object: 'text_completion',
      model: 'stub',
      choices: [{ index: 0, text: 'hiw0 hiw1 hiw2 ', finish_reason: 'length', logprobs: null }],
      usage: { prompt_tokens: 8, completion_tokens: 3, total_tokens: 11 },
      recyclegpt: { decode_mode: 'exact', acceptance_rate: 0.5 },
    });
    expect(body.id).toMatch(/^cmpl-/);
  });

  it("ends with 'stop' at a stop string and leaves the stop string out", async () => {
    const { post } = setup();
    const body = await json(await post('/v1/completions', { model: 'stub', prompt: 'a', max_tokens: 10, stop: ['aw2'] }));
    expect(body.choices[0]).toMatchObject({ text: 'aw0 aw1 ', finish_reason: 'stop' });
  });

  it('streams chunks, then usage, then [DONE]', async () => {
    const { post } = setup();
    const res = await post('/v1/completions', { model: 'stub', prompt: 'x', max_tokens: 2, stream: true, stream_options: { include_usage: true } });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = await sseEvents(res);
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.map((c) => c.choices[0]?.text)).toEqual(['xw0 ', 'xw1 ', '', undefined]);
    expect(chunks[2].choices[0].finish_reason).toBe('length');
    expect(chunks[2].recyclegpt.decode_mode).toBe('off');
    expect(chunks[3]).toMatchObject({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } });
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });
});

describe('POST /v1/chat/completions', () => {
  it('renders the GGUF chat template and answers as the assistant', async () => {
    const chatml = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}";
    const { post, model } = setup({ chatTemplate: chatml });
    const seen: string[] = [];
    const generate = model.generate;
    model.generate = (prompt, options) => (seen.push(model.detokenize(prompt as number[])), generate(prompt, options));
    const res = await post('/v1/chat/completions', { model: 'stub', max_completion_tokens: 1, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Hi' }] }] });
    const body = await json(res);
    expect(seen[0]).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(body).toMatchObject({ object: 'chat.completion', choices: [{ message: { role: 'assistant', content: '<|im_start|>systemw0 ' }, finish_reason: 'length' }] });
  });

  it('streams deltas: role first, then content, then an empty delta with finish_reason', async () => {
    const { post } = setup();
    const events = await sseEvents(await post('/v1/chat/completions', { model: 'stub', max_tokens: 2, stream: true, messages: [{ role: 'user', content: 'q' }] }));
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.map((c) => c.choices[0].delta)).toEqual([{ role: 'assistant', content: 'User:w0 ' }, { content: 'User:w1 ' }, {}]);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
  });
});

describe('bad input and abuse', () => {
  const cases: [string, string, unknown, number, Partial<{ code: string; param: string; type: string }>][] = [
    ['invalid JSON', '/v1/completions', '{"model":', 400, { code: 'invalid_json' }],
    ['a JSON array body', '/v1/completions', '[]', 400, { code: 'invalid_json' }],
    ['a missing prompt', '/v1/completions', { model: 'stub' }, 400, { param: 'prompt', code: 'missing_required_parameter' }],
    ['a missing model', '/v1/completions', { prompt: 'x' }, 400, { param: 'model', code: 'missing_required_parameter' }],
    ['a wrong temperature type', '/v1/completions', { model: 'stub', prompt: 'x', temperature: 'hot' }, 400, { param: 'temperature' }],
    ['a temperature out of range', '/v1/completions', { model: 'stub', prompt: 'x', temperature: 9 }, 400, { param: 'temperature' }],
    ['a fractional max_tokens', '/v1/completions', { model: 'stub', prompt: 'x', max_tokens: 1.5 }, 400, { param: 'max_tokens' }],
    ['max_tokens past the limit', '/v1/completions', { model: 'stub', prompt: 'x', max_tokens: 65 }, 400, { param: 'max_tokens' }],
    ['max_completion_tokens past the limit', '/v1/chat/completions', { model: 'stub', messages: [{ role: 'user', content: 'x' }], max_completion_tokens: 1000 }, 400, { param: 'max_completion_tokens' }],
    ['a prompt past the limit', '/v1/completions', { model: 'stub', prompt: 'x'.repeat(101) }, 400, { param: 'prompt', code: 'context_length_exceeded' }],
    ['a token id past the vocabulary', '/v1/completions', { model: 'stub', prompt: [1, 256] }, 400, { param: 'prompt' }],
    ['a bad stop', '/v1/completions', { model: 'stub', prompt: 'x', stop: [1] }, 400, { param: 'stop' }],
    ['a bad recycle mode', '/v1/completions', { model: 'stub', prompt: 'x', recycle: { mode: 'turbo' } }, 400, { param: 'recycle.mode' }],
    ['n > 1', '/v1/completions', { model: 'stub', prompt: 'x', n: 2 }, 400, { param: 'n' }],
    ['an unknown model', '/v1/completions', { model: 'gpt-4', prompt: 'x' }, 404, { code: 'model_not_found', type: 'not_found_error' }],
    ['empty messages', '/v1/chat/completions', { model: 'stub', messages: [] }, 400, { param: 'messages' }],
    ['a bad role', '/v1/chat/completions', { model: 'stub', messages: [{ role: 'wizard', content: 'x' }] }, 400, { param: 'messages[0].role' }],
    ['image content', '/v1/chat/completions', { model: 'stub', messages: [{ role: 'user', content: [{ type: 'image_url' }] }] }, 400, { param: 'messages[0].content' }],
  ];
  it.each(cases)('rejects %s', async (_name, path, body, status, error) => {
    const res = await setup().post(path, body);
    expect(res.status).toBe(status);
    const { error: answer } = await json(res);
    expect(answer).toMatchObject({ type: 'invalid_request_error', ...error });
    expect(answer.message.length).toBeGreaterThan(10);
  });

  it('refuses recycled decoding on a model without a recycle head', async () => {
    const res = await setup({ hasRecycleHead: false }).post('/v1/completions', { model: 'stub', prompt: 'x', recycle: { mode: 'fast' } });
    expect(res.status).toBe(400);
    expect((await json(res)).error.param).toBe('recycle.mode');
  });

  it('needs the API key on /v1 but not on the page or health check', async () => {
    const { app, post } = setup();
    const missing = await post('/v1/completions', { model: 'stub', prompt: 'x' }, { 'content-type': 'application/json' });
    expect(missing.status).toBe(401);
    expect((await json(missing)).error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
    const wrong = await app.request('/v1/models', { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect((await app.request('/healthz')).status).toBe(200);
  });

  it('rejects bodies over 1 MiB with 413', async () => {
    const res = await setup().post('/v1/completions', JSON.stringify({ model: 'stub', prompt: 'x'.repeat(2 << 20) }));
    expect(res.status).toBe(413);
    expect((await json(res)).error.code).toBe('request_too_large');
  });

  it('answers CORS preflights for the configured origin only', async () => {
    const { app } = setup();
    const preflight = await app.request('/v1/chat/completions', {
      method: 'OPTIONS',
      headers: { origin: 'https://example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://example.com');
    const other = await app.request('/v1/models', { headers: { ...auth, origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('stops the generation when the client cancels the stream', async () => {
    const { post, model } = setup();
    const res = await post('/v1/completions', { model: 'stub', prompt: 'c', max_tokens: 64, stream: true });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    await expect.poll(() => model.finished.length).toBe(1);
    expect(model.finished[0].finishReason).toBe('abort');
    expect(model.finished[0].tokens).toBeLessThan(64);
  });

  it('stops a non-streamed generation when the request is aborted', async () => {
    const { app, model } = setup();
    const abort = new AbortController();
    const request = new Request('http://x/v1/completions', { method: 'POST', headers: auth, body: JSON.stringify({ model: 'stub', prompt: 'n', max_tokens: 64 }), signal: abort.signal });
    const pending = app.fetch(request);
    setTimeout(() => abort.abort(), 5);
    await pending;
    expect(model.finished[0]).toMatchObject({ finishReason: 'abort' });
    expect(model.finished[0].tokens).toBeLessThan(64);
  });

  it('keeps concurrent streams apart and loads the model once', async () => {
    const { post, loads } = setup();
    const tags = ['alpha', 'beta', 'gamma', 'delta', 'eps', 'zeta'];
    const bodies = await Promise.all(tags.map(async (tag) => sseEvents(await post('/v1/completions', { model: 'stub', prompt: `${tag} go`, max_tokens: 5, stream: true }))));
    bodies.forEach((events, i) => {
      const text = events.slice(0, -1).map((e) => JSON.parse(e).choices[0].text).join('');
      expect(text).toBe([0, 1, 2, 3, 4].map((n) => `${tags[i]}w${n} `).join(''));
    });
    expect(loads()).toBe(1);
  });

  it('answers 429 past maxConcurrent and frees the slot afterwards', async () => {
    const { post } = setup({ maxConcurrent: 1 });
    const first = await post('/v1/completions', { model: 'stub', prompt: 'a', max_tokens: 3, stream: true });
    const second = await post('/v1/completions', { model: 'stub', prompt: 'b', max_tokens: 3 });
    expect(second.status).toBe(429);
    expect((await json(second)).error.type).toBe('rate_limit_error');
    await first.text();
    expect((await post('/v1/completions', { model: 'stub', prompt: 'b', max_tokens: 3 })).status).toBe(200);
  });
});
