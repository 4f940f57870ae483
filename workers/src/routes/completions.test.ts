import { describe, expect, it } from 'vitest';
import { CpuBudget } from '../budget.js';
import { errorOf, json, setup, sseEvents } from '../test-support/app.js';

describe('POST /v1/completions', () => {
  it('completes text with usage, finish_reason and recycle stats', async () => {
    const { post } = setup();
    const res = await post('/v1/completions', { model: 'stub', prompt: 'hi there', max_tokens: 3, recycle: { mode: 'exact' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const body = await json(res);
    expect(body).toMatchObject({
      object: 'text_completion',
      model: 'stub',
      choices: [{ index: 0, text: 'hiw0 hiw1 hiw2 ', finish_reason: 'length', logprobs: null }],
      usage: { prompt_tokens: 8, completion_tokens: 3, total_tokens: 11 },
      recyclegpt: { decode_mode: 'exact', acceptance_rate: 0.5, limit: null },
    });
    expect(body.id).toMatch(/^cmpl-/);
  });

  it("passes recycle.adaptive and recycle.draft_length to the SDK's decode options, and reports drafting_stopped", async () => {
    const { post, model } = setup();
    const seen: unknown[] = [];
    const generate = model.generate;
    model.generate = (prompt, options) => (seen.push(options?.decode), generate(prompt, options));
    const body = await json(await post('/v1/completions', { model: 'stub', prompt: 'x', max_tokens: 1, recycle: { mode: 'chain', adaptive: false, draft_length: 4 } }));
    expect(seen).toEqual([{ mode: 'chain', adaptive: false, draftLength: 4 }]);
    expect(body.recyclegpt).toMatchObject({ decode_mode: 'chain', drafting_stopped: false });
  });

  it('defaults to 16 tokens as OpenAI does, and takes a prompt as one string in an array or as token ids', async () => {
    const { post } = setup();
    expect((await json(await post('/v1/completions', { model: 'stub', prompt: ['a b'] }))).usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 16 });
    expect((await json(await post('/v1/completions', { model: 'stub', prompt: [104, 105], max_tokens: 1 }))).choices[0].text).toBe('hiw0 ');
  });

  it('gives tokens, token_logprobs, top_logprobs (with the chosen token) and text_offset, streamed and not', async () => {
    const { post } = setup();
    const request = { model: 'stub', prompt: 'a', max_tokens: 3, logprobs: 1, recycle: { mode: 'exact' } };
    const whole = await json(await post('/v1/completions', request));
    expect(whole.choices[0].text).toBe('aw0 aw1 aw2 ');
    expect(whole.choices[0].logprobs).toEqual({
      tokens: ['aw0 ', 'aw1 ', 'aw2 '],
      token_logprobs: [-0.25, -0.5, -0.75],
      top_logprobs: [{ 'aw0 ': -0.25 }, { 'aw1 ': -0.5 }, { 'aw2 ': -0.75 }],
      text_offset: [0, 4, 8],
    });
    const streamed = (await sseEvents(await post('/v1/completions', { ...request, stream: true }))).slice(0, 3).map((e) => JSON.parse(e).choices[0].logprobs);
    expect(streamed).toEqual([0, 1, 2].map((i) => ({ tokens: [whole.choices[0].logprobs.tokens[i]], token_logprobs: [whole.choices[0].logprobs.token_logprobs[i]], top_logprobs: [whole.choices[0].logprobs.top_logprobs[i]], text_offset: [4 * i] })));
    // logprobs 0: each token's own log-probability, and top_logprobs holds just the chosen token.
    const zero = await json(await post('/v1/completions', { ...request, logprobs: 0, max_tokens: 1 }));
    expect(zero.choices[0].logprobs).toEqual({ tokens: ['aw0 '], token_logprobs: [-0.25], top_logprobs: [{ 'aw0 ': -0.25 }], text_offset: [0] });
    // Two alternatives: the stub's most likely token is the chosen one, then "alt0".
    const two = await json(await post('/v1/completions', { ...request, logprobs: 2, max_tokens: 1 }));
    expect(two.choices[0].logprobs.top_logprobs).toEqual([{ 'aw0 ': -0.25, alt0: -1.25 }]);
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

  it('stops at the CPU budget with finish_reason length and says so', async () => {
    // 100 ms per request at 1 ms per prompt token and 10 ms per generated token: 80 ms usable, a 10-token prompt leaves 7 tokens.
    const { post } = setup({ budget: new CpuBudget(100, { decodeMs: 10, prefillMs: 1 }) });
    const body = await json(await post('/v1/completions', { model: 'stub', prompt: '0123456789', max_tokens: 50 }));
    expect(body.usage.completion_tokens).toBe(7);
    expect(body.choices[0].finish_reason).toBe('length');
    expect(body.recyclegpt.limit).toBe('cpu_time');
    const tooLong = await post('/v1/completions', { model: 'stub', prompt: 'x'.repeat(90), max_tokens: 5 });
    expect(tooLong.status).toBe(400);
    expect(await errorOf(tooLong)).toMatchObject({ code: 'context_length_exceeded', param: 'prompt' });
  });

  it('reports times and rates, or null for each where the clock stood still (deployed Workers)', async () => {
    const measured = await json(await setup().post('/v1/completions', { model: 'stub', prompt: 'x', max_tokens: 3 }));
    expect(measured.recyclegpt).toMatchObject({ timing: 'measured', tokens_per_second: 1000, prompt_tokens_per_second: 1000, prefill_ms: 1, decode_ms: 3, reused_prompt_tokens: 0 });
    const unmeasured = await json(await setup({ timing: 'unmeasured' }).post('/v1/completions', { model: 'stub', prompt: 'x', max_tokens: 3 }));
    expect(unmeasured.recyclegpt).toMatchObject({ timing: 'unmeasured', tokens_per_second: null, prompt_tokens_per_second: null, prefill_ms: null, decode_ms: null });
  });

  it('stops at the end of the context with recyclegpt.limit context_length', async () => {
    const { post } = setup({ contextLength: 12 });
    const body = await json(await post('/v1/completions', { model: 'stub', prompt: '0123456789', max_tokens: 50 }));
    expect(body.usage.completion_tokens).toBe(2);
    expect(body.recyclegpt.limit).toBe('context_length');
  });
});

describe('POST /v1/completions refuses', () => {
  const cases: [string, unknown, Partial<{ code: string; param: string | null }>][] = [
    ['invalid JSON', '{"model":', { code: 'invalid_json', param: null }],
    ['a JSON array body', '[]', { code: 'invalid_json', param: null }],
    ['a missing prompt', { model: 'stub' }, { param: 'prompt', code: 'missing_required_parameter' }],
    ['a missing model', { prompt: 'x' }, { param: 'model', code: 'missing_required_parameter' }],
    ['an empty prompt array', { model: 'stub', prompt: [] }, { param: 'prompt', code: 'invalid_value' }],
    ['a wrong temperature type', { model: 'stub', prompt: 'x', temperature: 'hot' }, { param: 'temperature', code: 'invalid_type' }],
    ['a temperature out of range', { model: 'stub', prompt: 'x', temperature: 2.01 }, { param: 'temperature', code: 'invalid_value' }],
    ['a top_p out of range', { model: 'stub', prompt: 'x', top_p: 1.5 }, { param: 'top_p', code: 'invalid_value' }],
    ['a fractional seed', { model: 'stub', prompt: 'x', seed: 1.5 }, { param: 'seed', code: 'invalid_value' }],
    ['a fractional max_tokens', { model: 'stub', prompt: 'x', max_tokens: 1.5 }, { param: 'max_tokens' }],
    ['max_tokens past the limit', { model: 'stub', prompt: 'x', max_tokens: 65 }, { param: 'max_tokens', code: 'invalid_value' }],
    ['a prompt past the limit', { model: 'stub', prompt: 'x'.repeat(101) }, { param: 'prompt', code: 'context_length_exceeded' }],
    ['a token id past the vocabulary', { model: 'stub', prompt: [1, 256] }, { code: 'invalid_value' }],
    ['logprobs past 20', { model: 'stub', prompt: 'x', logprobs: 21 }, { param: 'logprobs' }],
    ['logprobs in fast mode (its recycled tokens have none)', { model: 'stub', prompt: 'x', logprobs: 1, recycle: { mode: 'fast' } }, { param: 'logprobs' }],
    ['five stop strings', { model: 'stub', prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] }, { param: 'stop' }],
    ['a stop that is not a string', { model: 'stub', prompt: 'x', stop: [1] }, { param: 'stop' }],
    ['a non-boolean stream', { model: 'stub', prompt: 'x', stream: 'yes' }, { param: 'stream', code: 'invalid_type' }],
    ['a bad recycle mode', { model: 'stub', prompt: 'x', recycle: { mode: 'turbo' } }, { param: 'recycle.mode' }],
    ['a draft length outside chain mode', { model: 'stub', prompt: 'x', recycle: { mode: 'exact', draft_length: 3 } }, { param: 'recycle.draft_length' }],
    ['a draft length past 8', { model: 'stub', prompt: 'x', recycle: { mode: 'chain', draft_length: 9 } }, { param: 'recycle.draft_length' }],
  ];
  it.each(cases)('%s with a 400 naming the field', async (_name, body, error) => {
    const res = await setup().post('/v1/completions', body);
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ type: 'invalid_request_error', ...error });
  });

  const unsupported: [string, unknown][] = [
    ['echo', true],
    ['best_of', 3],
    ['suffix', ' end'],
    ['logit_bias', { 50256: -100 }],
    ['presence_penalty', 0.5],
    ['frequency_penalty', -1],
    ['n', 2],
  ];
  it.each(unsupported)('%s (it would change the answer) with unsupported_parameter', async (field, value) => {
    const res = await setup().post('/v1/completions', { model: 'stub', prompt: 'x', [field]: value });
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error).toMatchObject({ code: 'unsupported_parameter', param: field });
    expect(error.message).toContain(`'${field}'`);
  });

  it('nothing when those fields carry their neutral values, and ignores harmless unknown fields', async () => {
    const neutral = { logprobs: null, echo: false, best_of: 1, suffix: '', logit_bias: {}, presence_penalty: 0, frequency_penalty: 0, n: 1, user: 'u-1', metadata: { a: 1 } };
    const res = await setup().post('/v1/completions', { model: 'stub', prompt: 'x', max_tokens: 1, ...neutral });
    expect(res.status).toBe(200);
    expect((await json(res)).choices[0].text).toBe('xw0 ');
  });

  it('a body that is not sent as JSON, saying which Content-Type to use', async () => {
    const res = await setup().post('/v1/completions', 'model=stub&prompt=x', { authorization: 'Bearer test-key', 'content-type': 'application/x-www-form-urlencoded' });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toContain('Content-Type: application/json');
  });

  it('an unknown model with 404 before anything loads', async () => {
    const { post, loads } = setup();
    const res = await post('/v1/completions', { model: 'gpt-4', prompt: 'x' });
    expect(res.status).toBe(404);
    expect(await errorOf(res)).toMatchObject({ code: 'model_not_found', type: 'not_found_error', param: 'model' });
    expect(loads()).toBe(0);
  });

  it('recycled decoding on a model without a recycle head', async () => {
    const res = await setup({ hasRecycleHead: false }).post('/v1/completions', { model: 'stub', prompt: 'x', recycle: { mode: 'fast' } });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).param).toBe('recycle.mode');
  });
});
