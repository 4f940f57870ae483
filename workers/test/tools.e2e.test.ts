/// <reference lib="dom" />
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestModel, type ModelSpec } from '../../test/fixtures/models.js';
import { startDevServer, type DevServer } from './dev-server.js';

/**
 * Tool calls and JSON over the API, as a user makes them: the official OpenAI client against `npm start -- --model`
 * (`wrangler dev`, real sockets) serving a random-weight model with Qwen3's vocabulary and chat template. A required
 * call is constrained, so even random weights give a valid call (streamed too: the deltas join to one), the call and
 * its result go back and get an answer; a json_schema response validates; an unsupported schema feature is a 400.
 */
const QWEN: ModelSpec = { arch: 'qwen3', dim: 64, layers: 1, heads: 4, kvHeads: 2, headDim: 16, ffn: 128, vocab: 'qwen3', type: 'Q8_0', ctx: 512, seed: 23 };
const ajv = new Ajv2020.default({ strict: true });

const weather = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 20 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};
const checkArguments = ajv.compile(weather.function.parameters);

let server: DevServer;
let client: OpenAI;
let persistTo: string;
let model: string;

beforeAll(async () => {
  persistTo = mkdtempSync(join(tmpdir(), 'recyclegpt-r2-'));
  server = await startDevServer({ model: await makeTestModel(QWEN), persistTo });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-needed-locally', maxRetries: 0 });
  model = (await client.models.list()).data[0]!.id;
});

afterAll(async () => {
  await server?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Paris?' }];

describe('tool calls with the OpenAI client against wrangler dev (Qwen3 template)', () => {
  it("tool_choice 'required' gives a valid call; its result goes back through the template and gets an answer", async () => {
    const first = await client.chat.completions.create({ model, messages, tools: [weather], tool_choice: 'required', max_tokens: 60, temperature: 0.8, seed: 4 });
    const choice = first.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call).toMatchObject({ id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather' } });
    expect(checkArguments(JSON.parse(call.function.arguments)), call.function.arguments).toBe(true);

    const turns: OpenAI.ChatCompletionMessageParam[] = [...messages, choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temperature": 18}' }];
    const answer = await client.chat.completions.create({ model, messages: turns, tools: [weather], max_tokens: 8, temperature: 0 });
    expect(answer.choices[0]!.finish_reason).toBe('length');
    expect(typeof answer.choices[0]!.message.content).toBe('string');
    // The tools, the call and its result were all rendered: far more prompt than the question alone.
    expect(answer.usage!.prompt_tokens).toBeGreaterThan(first.usage!.prompt_tokens + 20);
  });

  it('streams a required call as deltas that join to a valid call', async () => {
    const stream = await client.chat.completions.create({ model, messages, tools: [weather], tool_choice: { type: 'function', function: { name: 'get_weather' } }, max_tokens: 60, temperature: 1, seed: 9, stream: true });
    const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null = null;
    let content = '';
    for await (const chunk of stream) {
      deltas.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
      content += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe('tool_calls');
    expect(content).toBe('');
    expect(deltas[0]).toMatchObject({ index: 0, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather' } });
    expect(deltas.length).toBeGreaterThan(2);
    const args = deltas.map((d) => d.function?.arguments ?? '').join('');
    expect(checkArguments(JSON.parse(args)), args).toBe(true);
  });

  it('answers response_format json_schema with JSON that validates, and an unsupported feature with 400 unsupported_parameter', async () => {
    const schema = { type: 'object', properties: { city: { type: 'string', maxLength: 10 }, sunny: { type: 'boolean' } }, required: ['city', 'sunny'], additionalProperties: false };
    const answer = await client.chat.completions.create({ model, messages, max_tokens: 60, temperature: 1, seed: 3, response_format: { type: 'json_schema', json_schema: { name: 'weather', schema, strict: true } } });
    const check = ajv.compile(schema);
    expect(check(JSON.parse(answer.choices[0]!.message.content!)), answer.choices[0]!.message.content!).toBe(true);

    const refused = await client.chat.completions
      .create({ model, messages, response_format: { type: 'json_schema', json_schema: { name: 'tags', schema: { type: 'array', uniqueItems: true } } } })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect(refused).toMatchObject({ status: 400, code: 'unsupported_parameter', param: 'response_format.json_schema.schema/uniqueItems' });
  });
});
