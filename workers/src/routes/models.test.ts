import { describe, expect, it } from 'vitest';
import { auth, errorOf, json, setup } from '../test-support/app.js';

describe('GET /v1/models', () => {
  it('lists the models and gives each card', async () => {
    const { app } = setup();
    expect(await json(await app.request('/v1/models', { headers: auth }))).toMatchObject({ object: 'list', data: [{ id: 'stub', object: 'model', owned_by: 'recyclegpt' }] });
    expect(await json(await app.request('/v1/models/stub', { headers: auth }))).toMatchObject({ id: 'stub', object: 'model' });
  });

  it('describes each model in the recyclegpt extension, with its details once it is loaded (listing loads nothing)', async () => {
    const { app, post, loads } = setup();
    const before = await json(await app.request('/v1/models/stub', { headers: auth }));
    expect(before.recyclegpt).toEqual({ description: 'a stub that writes w0 w1 w2', state: 'not_loaded' });
    expect(loads()).toBe(0);
    await post('/v1/completions', { model: 'stub', prompt: 'x', max_tokens: 1 });
    const after = await json(await app.request('/v1/models', { headers: auth }));
    expect(after.data[0].recyclegpt).toEqual({
      description: 'a stub that writes w0 w1 w2', state: 'ready', name: 'stub', architecture: 'llama', parameters: 0, quantization: null,
      context_length: 4096, recycle_head: true, chat_template: 'plain', backend: 'wasm', kernels: 'simd128',
    });
  });

  it('answers an unknown model with an OpenAI-style 404', async () => {
    const res = await setup().app.request('/v1/models/other', { headers: auth });
    expect(res.status).toBe(404);
    expect(await errorOf(res)).toMatchObject({ code: 'model_not_found', param: 'model', type: 'not_found_error' });
  });
});
