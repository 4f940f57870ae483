import { describe, expect, it } from 'vitest';
import { auth, errorOf, json, setup } from '../test-support/app.js';

describe('GET /v1/models', () => {
  it('lists the models and gives each card', async () => {
    const { app } = setup();
    expect(await json(await app.request('/v1/models', { headers: auth }))).toMatchObject({ object: 'list', data: [{ id: 'stub', object: 'model', owned_by: 'recyclegpt' }] });
    expect(await json(await app.request('/v1/models/stub', { headers: auth }))).toMatchObject({ id: 'stub', object: 'model' });
  });

  it('answers an unknown model with an OpenAI-style 404', async () => {
    const res = await setup().app.request('/v1/models/other', { headers: auth });
    expect(res.status).toBe(404);
    expect(await errorOf(res)).toMatchObject({ code: 'model_not_found', param: 'model', type: 'not_found_error' });
  });
});
