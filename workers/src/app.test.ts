import { describe, expect, it } from 'vitest';
import { auth, errorOf, KEY, setup } from './test-support/app.js';

const body = { model: 'stub', prompt: 'x', max_tokens: 1 };

describe('the app', () => {
  it('serves the playground at /', async () => {
    const page = await setup().app.request('/');
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('RecycleGPT Edge');
  });

  it('answers unknown routes with an OpenAI-style 404', async () => {
    const res = await setup().app.request('/v1/nothing', { headers: auth });
    expect(res.status).toBe(404);
    expect(await errorOf(res)).toMatchObject({ type: 'not_found_error', code: 'unknown_url' });
  });

  it('rejects bodies over 1 MiB with 413 (hono/body-limit)', async () => {
    const res = await setup().post('/v1/completions', JSON.stringify({ model: 'stub', prompt: 'x'.repeat(2 << 20) }));
    expect(res.status).toBe(413);
    expect((await errorOf(res)).code).toBe('request_too_large');
  });
});

describe('bearer auth (hono/bearer-auth)', () => {
  const cases: [string, Record<string, string>, number, string][] = [
    ['no header', {}, 401, 'Missing API key'],
    ['a wrong key', { authorization: 'Bearer nope' }, 401, 'Incorrect API key'],
    ['another scheme', { authorization: `Basic ${KEY}` }, 401, 'Malformed Authorization header'],
  ];
  it.each(cases)('refuses %s with 401 invalid_api_key and a challenge', async (_name, headers, status, message) => {
    const res = await setup().post('/v1/completions', body, { 'content-type': 'application/json', ...headers });
    expect(res.status).toBe(status);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    const error = await errorOf(res);
    expect(error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
    expect(error.message).toContain(message);
  });

  it('takes the scheme in any case, and needs no key for the page or the health check', async () => {
    const { app, post } = setup();
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      expect((await post('/v1/completions', body, { 'content-type': 'application/json', authorization: `${scheme} ${KEY}` })).status).toBe(200);
    }
    expect((await app.request('/healthz')).status).toBe(200);
    expect((await app.request('/')).status).toBe(200);
  });
});

describe('CORS (hono/cors)', () => {
  it('answers a preflight for the configured origin with the headers it asked for (the openai client sends x-stainless-*)', async () => {
    const asked = 'authorization,content-type,x-stainless-os,x-stainless-retry-count';
    const preflight = await setup().app.request('/v1/chat/completions', {
      method: 'OPTIONS',
      headers: { origin: 'https://example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': asked },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://example.com');
    expect(preflight.headers.get('access-control-allow-headers')).toBe(asked);
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
  });

  it('gives other origins no access', async () => {
    const other = await setup().app.request('/v1/models', { headers: { ...auth, origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
