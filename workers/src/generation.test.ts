import { describe, expect, it } from 'vitest';
import { errorOf, json, setup, sseEvents } from './test-support/app.js';

const stream = (tag: string, max_tokens = 64) => ({ model: 'stub', prompt: `${tag} go`, max_tokens, stream: true });

describe('one generation at a time, the rest in a bounded line', () => {
  it('admits one running + maxQueue waiting, refuses the next with 429 and Retry-After, and runs the admitted in order with their own text', async () => {
    const { post, model } = setup({ maxQueue: 2 });
    const tags = ['alpha', 'beta', 'gamma', 'delta'];
    const responses = await Promise.all(tags.map((tag, i) => post('/v1/completions', i % 2 ? { ...stream(tag, 5), stream: false } : stream(tag, 5))));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expect(Number(responses[3].headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await errorOf(responses[3])).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    const texts = [
      (await sseEvents(responses[0])).slice(0, -1).map((e) => JSON.parse(e).choices[0].text).join(''),
      (await json(responses[1])).choices[0].text,
      (await sseEvents(responses[2])).slice(0, -1).map((e) => JSON.parse(e).choices[0].text).join(''),
    ];
    texts.forEach((text, i) => expect(text).toBe([0, 1, 2, 3, 4].map((n) => `${tags[i]}w${n} `).join('')));
    expect(model.finished.map((f) => f.tag)).toEqual(['alpha', 'beta', 'gamma']);
    expect(model.mostAtOnce).toBe(1);
  });

  it('loads the model once for concurrent first requests', async () => {
    const { post, loads } = setup();
    await Promise.all(['a', 'b', 'c'].map(async (tag) => (await post('/v1/completions', stream(tag, 2))).text()));
    expect(loads()).toBe(1);
  });
});

describe('a client that goes away', () => {
  it('frees the turn when it cancels the stream before its first chunk', async () => {
    // maxQueue 0: while the cancelled generation held its turn, the next request would get 429.
    const { post, model } = setup({ maxQueue: 0, stepMs: 5 });
    const first = await post('/v1/completions', stream('gone'));
    await first.body!.cancel();
    await expect.poll(() => model.finished.length).toBe(1);
    expect(model.finished[0]).toMatchObject({ tag: 'gone', finishReason: 'abort' });
    expect(model.finished[0].tokens).toBeLessThan(8);
    const next = await post('/v1/completions', { model: 'stub', prompt: 'next', max_tokens: 2 });
    expect(next.status).toBe(200);
    expect((await json(next)).choices[0].text).toBe('nextw0 nextw1 ');
  });

  it('stops a stream it cancels midway within a few tokens', async () => {
    const { post, model } = setup({ stepMs: 5 });
    const reader = (await post('/v1/completions', stream('mid'))).body!.getReader();
    await reader.read();
    await reader.read();
    await reader.cancel();
    await expect.poll(() => model.finished.length).toBe(1);
    expect(model.finished[0]).toMatchObject({ finishReason: 'abort' });
    expect(model.finished[0].tokens).toBeLessThan(10);
  });

  it('stops a non-streamed generation when the request is aborted', async () => {
    const { post, model } = setup({ stepMs: 5 });
    const abort = new AbortController();
    const response = await post('/v1/completions', { model: 'stub', prompt: 'n', max_tokens: 64 }, undefined, { signal: abort.signal });
    setTimeout(() => abort.abort(), 20);
    await response.text().catch(() => '');
    await expect.poll(() => model.finished.length).toBe(1);
    expect(model.finished[0]).toMatchObject({ finishReason: 'abort' });
    expect(model.finished[0].tokens).toBeLessThan(12);
  });

  it('leaves the line while waiting: it never runs and its place is free again', async () => {
    const { post, model } = setup({ maxQueue: 1, stepMs: 5 });
    const running = await post('/v1/completions', stream('run', 10));
    const waiting = await post('/v1/completions', stream('wait', 10));
    await waiting.body!.cancel();
    const after = await post('/v1/completions', stream('after', 2));
    expect(after.status).toBe(200);
    await Promise.all([running.text(), after.text()]);
    expect(model.finished.map((f) => f.tag)).toEqual(['run', 'after']);
  });
});

describe('a generation that fails', () => {
  it('ends a stream with an error event and a JSON response with an error body, and frees the turn', async () => {
    const { post, model } = setup({ maxQueue: 0 });
    model.generate = () => Object.assign((async function* () { throw new Error('engine exploded'); })(), { promptTokens: 1, stats: new Promise<never>(() => {}) });
    const events = await sseEvents(await post('/v1/completions', stream('x')));
    expect(JSON.parse(events.at(-1)!)).toMatchObject({ error: { type: 'server_error', code: 'internal_error' } });
    const whole = await json(await post('/v1/completions', { model: 'stub', prompt: 'x' }));
    expect(whole).toMatchObject({ error: { code: 'internal_error' } });
  });
});
