/// <reference types="@cloudflare/vitest-pool-workers/types" />
import { env, exports } from 'cloudflare:workers';
import { loadModel, type ChatMessage, type Model } from 'recyclegpt';
import engine from 'recyclegpt/recyclegpt.wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The Worker entry, run by workerd with the bindings of workers/vitest.projects.ts: a small random-weight
// test model with SmolLM2's ChatML template (TEST_CHAT_MODEL, made from test/fixtures/models.ts) and a recycle
// head for it (TEST_HEAD) that the tests put into the MODELS R2 bucket.
const testEnv = env as unknown as {
  MODELS: R2Bucket;
  TEST_CHAT_MODEL: ArrayBuffer;
  TEST_HEAD: ArrayBuffer;
  MODEL_KEY: string;
  RECYCLE_KEY: string;
  API_KEY: string;
};
const worker = (exports as unknown as { default: Fetcher }).default;
const headers = { authorization: `Bearer ${testEnv.API_KEY}`, 'content-type': 'application/json' };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = (res: Response): Promise<any> => res.json();

function post(path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return worker.fetch(`http://worker${path}`, { method: 'POST', headers, body: JSON.stringify(body), ...init });
}

async function streamedText(response: Response, field: (choice: any) => string | undefined): Promise<string> {
  const events = (await response.text()).trim().split('\n\n').map((e) => e.replace(/^data: /, ''));
  expect(events.at(-1)).toBe('[DONE]');
  return events.slice(0, -1).map((e) => field(JSON.parse(e).choices[0]) ?? '').join('');
}

const greedy = (prompt: string, extra: object = {}) => ({ model: 'test', prompt, max_tokens: 12, temperature: 0, ...extra });

function commonPrefix(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** The same model, loaded here: it renders the prompts the Worker runs, for the token counts the tests expect. */
let local: Model;
beforeAll(async () => {
  local = await loadModel(new Uint8Array(testEnv.TEST_CHAT_MODEL), { wasm: engine });
});
afterAll(() => local?.dispose());

describe('the Worker with a model in R2', () => {
  it('answers 503 while the object is missing, then loads it once it is uploaded (a failed load is not kept)', async () => {
    const missing = await post('/v1/completions', greedy('Hello'));
    expect(missing.status).toBe(503);
    expect((await json(missing)).error).toMatchObject({ type: 'server_error', code: 'model_unavailable' });

    await testEnv.MODELS.put(testEnv.MODEL_KEY, testEnv.TEST_CHAT_MODEL);
    await testEnv.MODELS.put(testEnv.RECYCLE_KEY, testEnv.TEST_HEAD);
    // Concurrent first requests share one load from R2.
    const responses = await Promise.all([0, 1, 2].map(() => post('/v1/completions', greedy('Hello'))));
    const bodies = await Promise.all(responses.map(json));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(new Set(bodies.map((b) => b.choices[0].text)).size).toBe(1);
    expect(bodies[0].usage.completion_tokens).toBeGreaterThan(0);
  });

  it('lists the model under MODEL_KEY without its extension', async () => {
    const res = await worker.fetch('http://worker/v1/models', { headers });
    expect((await json(res)).data.map((m: { id: string }) => m.id)).toEqual(['test']);
  });

  it('runs the relaxed-SIMD engine module it bundles beside the SIMD128 one (workerd computes relaxed SIMD exactly)', async () => {
    const card = await json(await worker.fetch('http://worker/v1/models/test', { headers }));
    expect(card.recyclegpt).toMatchObject({ state: 'ready', backend: 'wasm', kernels: 'relaxed' });
  });

  it('streams exactly the tokens a non-streamed request returns', async () => {
    const whole = await json(await post('/v1/completions', greedy('The edge')));
    const streamed = await streamedText(await post('/v1/completions', greedy('The edge', { stream: true })), (c) => c?.text);
    expect(streamed).toBe(whole.choices[0].text);
    // workerd's clock stands still during pure computation, so the rate may be unknown (null) but never bogus.
    expect(whole.recyclegpt).toMatchObject({ decode_mode: 'off', full_passes: expect.any(Number), acceptance_rate: null });
    expect(whole.recyclegpt.tokens_per_second === null || whole.recyclegpt.tokens_per_second > 0).toBe(true);
  });

  it('decodes with the recycle head: exact equals off, fast takes one full pass per two tokens', async () => {
    const off = await json(await post('/v1/completions', greedy('The edge', { max_tokens: 21 })));
    const exact = await json(await post('/v1/completions', greedy('The edge', { max_tokens: 21, recycle: { mode: 'exact' } })));
    expect(exact.choices[0].text).toBe(off.choices[0].text);
    expect(exact.recyclegpt).toMatchObject({ decode_mode: 'exact', acceptance_rate: expect.any(Number) });
    expect(exact.recyclegpt.full_passes).toBeLessThan(off.recyclegpt.full_passes);
    const fast = await streamedText(await post('/v1/completions', greedy('The edge', { max_tokens: 21, stream: true, recycle: { mode: 'fast' } })), (c) => c?.text);
    expect(fast.length).toBeGreaterThan(0);
    const fastWhole = await json(await post('/v1/completions', greedy('The edge', { max_tokens: 21, recycle: { mode: 'fast' } })));
    expect(fastWhole.recyclegpt.full_passes).toBe(10);
    expect(fastWhole.choices[0].text).toBe(fast);
  });

  it('keeps concurrent streams apart: each equals its prompt run alone', async () => {
    const prompts = ['One', 'Two words', 'Three more words', 'And a fourth'];
    const alone: string[] = [];
    for (const p of prompts) alone.push((await json(await post('/v1/completions', greedy(p)))).choices[0].text);
    const together = await Promise.all(prompts.map(async (p) => streamedText(await post('/v1/completions', greedy(p, { stream: true })), (c) => c?.text)));
    expect(together).toEqual(alone);
  });

  it('frees the model for the next request when a client cancels its stream', async () => {
    const res = await post('/v1/completions', greedy('Cancel me', { max_tokens: 64, stream: true }));
    const reader = res.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    await reader.cancel();
    const next = await post('/v1/completions', greedy('Next'));
    expect(next.status).toBe(200);
    expect((await json(next)).usage.completion_tokens).toBeGreaterThan(0);
  });

  it('reproduces a sampled completion from its seed', async () => {
    const sampled = () => post('/v1/completions', greedy('Seeded', { temperature: 1, top_p: 0.9, seed: 42 })).then(json);
    expect((await sampled()).choices[0].text).toBe((await sampled()).choices[0].text);
  });

  it("chats with the GGUF's own template, streamed and not", async () => {
    const res = await post('/v1/chat/completions', { model: 'test', max_tokens: 5, temperature: 0, messages: [{ role: 'user', content: 'Hi' }] });
    const body = await json(res);
    expect(body.choices[0].message.role).toBe('assistant');
    // SmolLM2's template adds its default system message when the conversation has none.
    expect(body.usage.prompt_tokens).toBe(local.renderChat([{ role: 'user', content: 'Hi' }]).ids.length);
    const streamed = await streamedText(
      await post('/v1/chat/completions', { model: 'test', max_tokens: 5, temperature: 0, stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
      (c) => c?.delta.content,
    );
    expect(streamed).toBe(body.choices[0].message.content);
  });

  it("gives the full model's log-probabilities: the same in exact mode as in off, the greedy pick first among the alternatives", async () => {
    const request = (mode: string) => ({ model: 'test', max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3, recycle: { mode }, messages: [{ role: 'user', content: 'Hi' }] });
    const off = await json(await post('/v1/chat/completions', request('off')));
    const exact = await json(await post('/v1/chat/completions', request('exact')));
    const content = off.choices[0].logprobs.content as { token: string; logprob: number; bytes: number[]; top_logprobs: { token: string; logprob: number }[] }[];
    expect(content.length).toBeGreaterThan(0);
    expect(exact.choices[0].message.content).toBe(off.choices[0].message.content);
    expect(exact.choices[0].logprobs.content.map((t: { logprob: number }) => t.logprob)).toEqual(content.map((t) => expect.closeTo(t.logprob, 4)));
    for (const token of content) {
      expect(token.top_logprobs).toHaveLength(3);
      expect(token.top_logprobs[0]).toMatchObject({ token: token.token, logprob: token.logprob });
      expect(token.logprob).toBeLessThanOrEqual(0);
      expect(token.top_logprobs.reduce((p, t) => p + Math.exp(t.logprob), 0)).toBeLessThanOrEqual(1 + 1e-6);
    }
    // The tokens' bytes make up the answer's text.
    expect(new TextDecoder().decode(new Uint8Array(content.flatMap((t) => t.bytes)))).toBe(off.choices[0].message.content);
    const fast = await post('/v1/chat/completions', request('fast'));
    expect(fast.status).toBe(400);
    expect((await json(fast)).error).toMatchObject({ param: 'logprobs' });
  });

  it('reuses the cached prefix when a conversation goes on: turn 2 runs only the tokens after turn 1', async () => {
    const ask = (messages: ChatMessage[]) => post('/v1/chat/completions', { model: 'test', max_tokens: 6, temperature: 0, messages }).then(json);
    const first: ChatMessage[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }];
    const turn1 = await ask(first);
    const second: ChatMessage[] = [...first, { role: 'assistant', content: turn1.choices[0].message.content }, { role: 'user', content: 'Go on' }];
    const turn2 = await ask(second);
    const [ids1, ids2] = [local.renderChat(first).ids, local.renderChat(second).ids];
    expect(turn2.usage.prompt_tokens).toBe(ids2.length);
    // Everything both prompts share is reused (with a recycle head, all but the last of it: its head row is rebuilt).
    const shared = commonPrefix(ids1, ids2);
    expect(shared).toBeGreaterThan(ids2.length / 2);
    expect(turn2.recyclegpt.reused_prompt_tokens).toBeGreaterThanOrEqual(shared - 1);
    expect(turn2.recyclegpt.reused_prompt_tokens).toBeLessThan(ids2.length);

    // Another conversation in between runs in another of the model's KV sequences: turn 3 still reuses turn 2's prompt.
    expect(local.info.sequences).toBeGreaterThan(1);
    const other: ChatMessage[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Something else entirely' }];
    await ask(other);
    const third: ChatMessage[] = [...second, { role: 'assistant', content: turn2.choices[0].message.content }, { role: 'user', content: 'And then?' }];
    const turn3 = await ask(third);
    const ids3 = local.renderChat(third).ids;
    expect(turn3.recyclegpt.reused_prompt_tokens).toBeGreaterThanOrEqual(commonPrefix(ids2, ids3) - 1);
    expect(commonPrefix(ids2, ids3)).toBeGreaterThan(commonPrefix(local.renderChat(other).ids, ids3));
  });

  it('maps bad requests to OpenAI-style errors', async () => {
    const cases: [Response, number, string | null][] = [
      [await post('/v1/completions', greedy('x'), { headers: { 'content-type': 'application/json' } }), 401, 'invalid_api_key'],
      [await post('/v1/completions', { ...greedy('x'), model: 'gpt-4o' }), 404, 'model_not_found'],
      [await post('/v1/completions', greedy('word '.repeat(300))), 400, 'context_length_exceeded'],
      [await post('/v1/completions', greedy('x', { max_tokens: 100_000 })), 400, 'invalid_value'],
      [await worker.fetch('http://worker/v1/completions', { method: 'POST', headers, body: '{oops' }), 400, 'invalid_json'],
    ];
    for (const [res, status, code] of cases) {
      expect(res.status).toBe(status);
      expect((await json(res)).error.code).toBe(code);
    }
  });

  it('serves the playground and the health check without a key', async () => {
    expect(await (await worker.fetch('http://worker/')).text()).toContain('<form id="composer">');
    expect((await worker.fetch('http://worker/healthz')).status).toBe(200);
  });
});
