/// <reference types="@cloudflare/vitest-pool-workers/types" />
import { env } from 'cloudflare:workers';
import { loadModel, type Model } from 'recyclegpt';
import engine from 'recyclegpt/recyclegpt.wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, lazyModels } from '../app.js';
import { CpuBudget } from '../budget.js';
import { auth, errorOf, json, setup } from '../test-support/app.js';

const embeddings = (input: unknown, extra: object = {}) => ({ model: 'stub', input, ...extra });
const floats = (base64: string) => new Float32Array(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer);
const norm = (v: number[]) => Math.hypot(...v);

describe('POST /v1/embeddings', () => {
  it("answers in OpenAI's shape: a list of unit vectors with their index, the model, prompt tokens", async () => {
    const { post } = setup();
    const res = await post('/v1/embeddings', embeddings('hello', { user: 'ignored' }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const body = await json(res);
    expect(body).toMatchObject({ object: 'list', model: 'stub', usage: { prompt_tokens: 5, total_tokens: 5 }, recyclegpt: { pooling: 'mean', normalized: true } });
    expect(body.data).toHaveLength(1);
    expect(body.data[0]).toMatchObject({ object: 'embedding', index: 0 });
    expect(body.data[0].embedding).toHaveLength(8);
    expect(norm(body.data[0].embedding)).toBeCloseTo(1, 6);
  });

  it('embeds a list of texts, token ids, or a list of token-id arrays, one vector per input in order', async () => {
    const { post } = setup();
    const texts = await json(await post('/v1/embeddings', embeddings(['hi', 'a longer text', 'hi'])));
    expect(texts.data.map((d: { index: number }) => d.index)).toEqual([0, 1, 2]);
    expect(texts.data[2].embedding).toEqual(texts.data[0].embedding);
    expect(texts.data[1].embedding).not.toEqual(texts.data[0].embedding);
    expect(texts.usage.prompt_tokens).toBe(2 + 13 + 2);
    // The stub's token ids are the characters' codes: [104, 105] is 'hi'.
    const ids = await json(await post('/v1/embeddings', embeddings([104, 105])));
    expect(ids.data).toHaveLength(1);
    expect(ids.data[0].embedding).toEqual(texts.data[0].embedding);
    const lists = await json(await post('/v1/embeddings', embeddings([[104, 105], [97]])));
    expect(lists.data.map((d: { embedding: number[] }) => d.embedding)[0]).toEqual(texts.data[0].embedding);
    expect(lists.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
  });

  it("sends base64 as OpenAI does: each vector's float32 values, little-endian", async () => {
    const { post } = setup();
    const asFloat = await json(await post('/v1/embeddings', embeddings(['one', 'two'], { encoding_format: 'float' })));
    const asBase64 = await json(await post('/v1/embeddings', embeddings(['one', 'two'], { encoding_format: 'base64' })));
    for (const i of [0, 1]) {
      expect(typeof asBase64.data[i].embedding).toBe('string');
      expect(Array.from(floats(asBase64.data[i].embedding))).toEqual(asFloat.data[i].embedding);
    }
  });

  it("takes 'dimensions' equal to the model's width, and refuses any other as unsupported_parameter", async () => {
    const { post } = setup();
    expect((await post('/v1/embeddings', embeddings('x', { dimensions: 8 }))).status).toBe(200);
    const res = await post('/v1/embeddings', embeddings('x', { dimensions: 4 }));
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error).toMatchObject({ code: 'unsupported_parameter', param: 'dimensions' });
    expect(error.message).toMatch(/have 8 dimensions/);
  });

  it('waits its turn behind a generation on the same model, and a generation asked for later waits for it', async () => {
    const { post, model } = setup({ maxQueue: 2, stepMs: 3 });
    const generation = post('/v1/completions', { model: 'stub', prompt: 'gen x', max_tokens: 6 });
    const embedding = post('/v1/embeddings', embeddings('embed me'));
    const later = post('/v1/completions', { model: 'stub', prompt: 'later x', max_tokens: 1 });
    const [g, e, l] = await Promise.all([generation, embedding, later]);
    await Promise.all([json(g), json(e), json(l)]);
    expect(model.embedded).toEqual(['embed me']);
    expect(model.finished.map((f) => f.tag)).toEqual(['gen', 'later']);
    expect(model.mostAtOnce).toBe(1);
  });

  it('is refused with 429 while the line is full, and runs nothing for a client that left while waiting', async () => {
    const { post, model } = setup({ maxQueue: 0, stepMs: 5 });
    const running = await post('/v1/completions', { model: 'stub', prompt: 'busy x', max_tokens: 20, stream: true });
    const refused = await post('/v1/embeddings', embeddings('x'));
    expect(refused.status).toBe(429);
    expect(await errorOf(refused)).toMatchObject({ code: 'rate_limit_exceeded' });
    await running.text();

    const { post: post2, model: model2 } = setup({ maxQueue: 1, stepMs: 5 });
    const busy = post2('/v1/completions', { model: 'stub', prompt: 'busy x', max_tokens: 20 });
    const abort = new AbortController();
    const waiting = await post2('/v1/embeddings', embeddings('left'), undefined, { signal: abort.signal });
    abort.abort();
    await waiting.body?.cancel().catch(() => {});
    await (await busy).text();
    const next = await json(await post2('/v1/embeddings', embeddings('next')));
    expect(next.data).toHaveLength(1);
    expect(model2.embedded).toEqual(['next']);
    expect(model.embedded).toEqual([]);
  });
});

describe('POST /v1/embeddings refuses', () => {
  const cases: [string, unknown, Partial<{ code: string; param: string | null; message: string }>][] = [
    ['a missing input', { model: 'stub' }, { param: 'input', code: 'missing_required_parameter' }],
    ['an empty string', embeddings(''), { param: 'input', code: 'invalid_value', message: "'input' must not be empty." }],
    ['an empty array', embeddings([]), { param: 'input', code: 'invalid_type' }],
    ['an empty string in a list', embeddings(['a', '']), { param: 'input[1]', message: "'input[1]' must not be empty." }],
    ['an empty token-id array in a list', embeddings([[1], []]), { param: 'input[1]', message: "'input[1]' must not be empty." }],
    ['numbers mixed with strings', embeddings([1, 'a']), { param: 'input', code: 'invalid_type' }],
    ['a negative token id', embeddings([1, -2]), { param: 'input[1]', message: "'input[1]' must be a token id: an integer from 0." }],
    ['a fractional token id', embeddings([1.5]), { param: 'input[0]', code: 'invalid_value' }],
    ['a missing model', { input: 'x' }, { param: 'model', code: 'missing_required_parameter' }],
    ['a bad encoding_format', embeddings('x', { encoding_format: 'int8' }), { param: 'encoding_format' }],
    ['dimensions 0', embeddings('x', { dimensions: 0 }), { param: 'dimensions', code: 'invalid_value' }],
    ['more inputs than the server takes', embeddings(Array.from({ length: 33 }, () => 'x')), { param: 'input', code: 'invalid_value' }],
    ['an input past the per-input token limit', embeddings(['short', 'y'.repeat(101)]), { param: 'input[1]', code: 'context_length_exceeded' }],
    ['a token id outside the vocabulary', embeddings([[1], [300]]), { param: null, code: 'invalid_value' }],
  ];
  it.each(cases)('%s with a 400 naming the field', async (_name, body, error) => {
    const res = await setup().post('/v1/embeddings', body);
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ type: 'invalid_request_error', ...error });
  });

  it('an input longer than the context, as context_length_exceeded', async () => {
    const res = await setup({ contextLength: 20 }).post('/v1/embeddings', embeddings('a text longer than the twenty tokens of context'));
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'context_length_exceeded', param: 'input' });
  });

  it('inputs that would take more CPU than a request may use', async () => {
    const { post } = setup({ budget: new CpuBudget(100, { decodeMs: 10, prefillMs: 1 }) });
    expect((await post('/v1/embeddings', embeddings(['x'.repeat(30), 'y'.repeat(30)]))).status).toBe(200);
    const res = await post('/v1/embeddings', embeddings(['x'.repeat(45), 'y'.repeat(45)]));
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'context_length_exceeded', param: 'input' });
  });

  it('an unknown model with 404', async () => {
    const res = await setup().post('/v1/embeddings', { model: 'nope', input: 'x' });
    expect(res.status).toBe(404);
    expect(await errorOf(res)).toMatchObject({ code: 'model_not_found' });
  });
});

describe('POST /v1/embeddings on a real model in workerd', () => {
  const testEnv = env as unknown as { TEST_MODEL: ArrayBuffer };
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(new Uint8Array(testEnv.TEST_MODEL), { wasm: engine });
  });
  afterAll(() => model?.dispose());

  it("gives the SDK's embed() vectors, as floats and as base64", async () => {
    const app = createApp({ models: lazyModels([{ id: 'test', load: async () => model }]) });
    const post = (body: object) => app.request('/v1/embeddings', { method: 'POST', headers: auth, body: JSON.stringify({ model: 'test', ...body }) });
    const input = ['The lighthouse keeper', 'climbed the stairs'];
    const expected = await model.embed(input);
    const asFloat = await json(await post({ input }));
    expect(asFloat.data.map((d: { embedding: number[] }) => d.embedding)).toEqual(expected.vectors.map((v) => Array.from(v)));
    expect(asFloat.usage.prompt_tokens).toBe(expected.inputTokens[0]! + expected.inputTokens[1]!);
    const asBase64 = await json(await post({ input, encoding_format: 'base64' }));
    expect(asBase64.data.map((d: { embedding: string }) => floats(d.embedding))).toEqual(expected.vectors);
  });
});
