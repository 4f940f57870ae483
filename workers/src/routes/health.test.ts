import { describe, expect, it } from 'vitest';
import { createApp, lazyModels } from '../app.js';
import { json, setup } from '../test-support/app.js';

describe('GET /healthz', () => {
  it('needs no key and tells a model not loaded yet from a loaded one', async () => {
    const { app, post } = setup();
    const before = await app.request('/healthz');
    expect(before.status).toBe(200);
    expect(await json(before)).toEqual({
      status: 'ok',
      models: [{ id: 'stub', state: 'not_loaded', running: 0, queued: 0, max_queue: 8, running_ms: null, since_last_token_ms: null, stuck: false }],
    });
    await post('/v1/completions', { model: 'stub', prompt: 'x', max_tokens: 1 });
    expect((await json(await app.request('/healthz'))).models[0].state).toBe('ready');
  });

  it('counts the running generation and the ones waiting', async () => {
    const { app, post } = setup({ stepMs: 5 });
    const responses = await Promise.all([0, 1, 2].map(() => post('/v1/completions', { model: 'stub', prompt: 'x', max_tokens: 20, stream: true })));
    expect((await json(await app.request('/healthz'))).models[0]).toMatchObject({ state: 'ready', running: 1, queued: 2, stuck: false });
    await Promise.all(responses.map((r) => r.text()));
    expect((await json(await app.request('/healthz'))).models[0]).toMatchObject({ running: 0, queued: 0 });
  });

  it('answers 503 with the reason while the last load failed', async () => {
    const app = createApp({ models: lazyModels([{ id: 'm', load: () => Promise.reject(new Error('the object is truncated')) }]) });
    await app.request('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', prompt: 'x' }) });
    const res = await app.request('/healthz');
    expect(res.status).toBe(503);
    expect(await json(res)).toMatchObject({ status: 'model_unavailable', models: [{ id: 'm', state: 'failed', error: 'the object is truncated' }] });
  });
});
