/**
 * response_format, tools and tool_choice on the routes (over the stub model, whose chat() with tools answers with a
 * call as the SDK's tokens carry one): the fields reach the SDK in its shape, calls come back as message.tool_calls
 * with finish_reason 'tool_calls' and, streamed, as delta.tool_calls; what the SDK cannot enforce and combinations
 * that cannot work are 400s naming the field.
 */
import { describe, expect, it } from 'vitest';
import { errorOf, json, setup, sseEvents } from '../test-support/app.js';

const messages = [{ role: 'user', content: 'weather?' }];
const TOOL = { type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { n: { type: 'integer' } } }, strict: true } };
const chunksOf = async (res: Response) => (await sseEvents(res)).slice(0, -1).map((e) => JSON.parse(e));

describe('response_format', () => {
  it("passes json_object and json_schema (name, strict) to the SDK as responseFormat, on both endpoints", async () => {
    const { post, model } = setup();
    const schema = { type: 'object', properties: { a: { type: 'integer' } } };
    await json(await post('/v1/chat/completions', { model: 'stub', max_tokens: 1, messages, response_format: { type: 'json_schema', json_schema: { name: 'thing', schema, strict: true } } }));
    expect(model.chats[0]!.options.responseFormat).toEqual({ type: 'json_schema', schema, name: 'thing', strict: true });
    await json(await post('/v1/chat/completions', { model: 'stub', max_tokens: 1, messages, response_format: { type: 'json_object' } }));
    expect(model.chats[1]!.options.responseFormat).toEqual({ type: 'json_object' });
    await json(await post('/v1/chat/completions', { model: 'stub', max_tokens: 1, messages, response_format: { type: 'text' } }));
    expect(model.chats[2]!.options.responseFormat).toEqual({ type: 'text' });
    const completion = await post('/v1/completions', { model: 'stub', prompt: 'x', max_tokens: 1, response_format: { type: 'json_object' } });
    expect(completion.status).toBe(200);
  });

  it('answers a schema feature the engine cannot enforce with 400 unsupported_parameter at its place in the request', async () => {
    const { post } = setup();
    for (const path of ['/v1/chat/completions', '/v1/completions']) {
      const body = { model: 'stub', max_tokens: 1, messages, prompt: 'x', response_format: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'array', uniqueItems: true } } } };
      const res = await post(path, body);
      expect(res.status).toBe(400);
      expect(await errorOf(res)).toMatchObject({ type: 'invalid_request_error', code: 'unsupported_parameter', param: 'response_format.json_schema.schema/uniqueItems', message: expect.stringContaining('uniqueItems') });
    }
  });

  it('refuses a malformed response_format by field', async () => {
    const { post } = setup();
    const cases: [unknown, string][] = [
      [{ type: 'yaml' }, 'response_format.type'],
      [{ type: 'json_schema' }, 'response_format.json_schema'],
      [{ type: 'json_schema', json_schema: { schema: {} } }, 'response_format.json_schema.name'],
      [{ type: 'json_schema', json_schema: { name: 'x', schema: 3 } }, 'response_format.json_schema.schema'],
    ];
    for (const [response_format, param] of cases) {
      const res = await post('/v1/chat/completions', { model: 'stub', messages, response_format });
      expect(res.status, JSON.stringify(response_format)).toBe(400);
      expect((await errorOf(res)).param).toBe(param);
    }
  });
});

describe('tools and tool_choice', () => {
  it('passes tools and tool_choice to chat(); a call comes back as message.tool_calls with finish_reason tool_calls', async () => {
    const { post, model } = setup();
    const res = await post('/v1/chat/completions', { model: 'stub', max_tokens: 8, stop: 'w4', messages, tools: [TOOL], tool_choice: 'auto', parallel_tool_calls: false });
    const body = await json(res);
    expect(model.chats[0]!.options).toMatchObject({ tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: TOOL.function.parameters } }], toolChoice: 'auto' });
    expect(body.choices[0]).toMatchObject({
      message: { role: 'assistant', content: 'ok ', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"n":1}' } }] },
      finish_reason: 'tool_calls',
    });
  });

  it('a required call: content null; streamed, delta.tool_calls pieces that join to the call, then finish_reason tool_calls', async () => {
    const { post, model } = setup();
    const whole = await json(await post('/v1/chat/completions', { model: 'stub', max_tokens: 8, stop: 'w3', messages, tools: [TOOL], tool_choice: { type: 'function', function: { name: 'get_weather' } } }));
    expect(model.chats[0]!.options.toolChoice).toEqual({ type: 'function', function: { name: 'get_weather' } });
    expect(whole.choices[0].message).toMatchObject({ content: null, tool_calls: [{ function: { name: 'get_weather', arguments: '{"n":1}' } }] });
    const chunks = await chunksOf(await post('/v1/chat/completions', { model: 'stub', max_tokens: 8, stop: 'w3', stream: true, messages, tools: [TOOL], tool_choice: 'required' }));
    expect(chunks.map((c) => c.choices[0].delta)).toEqual([
      { role: 'assistant', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '{"n":' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '1}' } }] },
      {},
    ]);
    expect(chunks.at(-1).choices[0].finish_reason).toBe('tool_calls');
  });

  it("tool_choice 'none' reaches the SDK, which then offers no tools", async () => {
    const { post, model } = setup();
    const body = await json(await post('/v1/chat/completions', { model: 'stub', max_tokens: 2, messages, tools: [TOOL], tool_choice: 'none' }));
    expect(model.chats[0]!.options.toolChoice).toBe('none');
    expect(body.choices[0]).toMatchObject({ message: { content: 'user:w0 user:w1 ' }, finish_reason: 'length' });
    expect(body.choices[0].message).not.toHaveProperty('tool_calls');
  });

  it('refuses what cannot work, naming the field', async () => {
    const { post } = setup();
    const cases: [Record<string, unknown>, string, string][] = [
      [{ tool_choice: 'required' }, 'tool_choice', 'tools'],
      [{ tools: [TOOL], tool_choice: { type: 'function', function: { name: 'other' } } }, 'tool_choice', 'not among'],
      [{ tools: [TOOL], tool_choice: 'sometimes' }, 'tool_choice', "'none', 'auto', 'required'"],
      [{ tools: [TOOL], response_format: { type: 'json_object' } }, 'response_format', 'cannot be combined'],
      [{ tools: [{ type: 'function', function: { name: 'has space' } }] }, 'tools[0].function.name', 'letters'],
      [{ tools: [{ type: 'retrieval' }] }, 'tools[0].type', 'function'],
      [{ functions: [{ name: 'f' }] }, 'functions', 'not supported'],
    ];
    for (const [fields, param, words] of cases) {
      const res = await post('/v1/chat/completions', { model: 'stub', messages, ...fields });
      expect(res.status, JSON.stringify(fields)).toBe(400);
      const error = await errorOf(res);
      expect(error.param, JSON.stringify(fields)).toBe(param);
      expect(error.message).toContain(words);
    }
  });
});
