/**
 * chat() with tools on a random-weight model with Qwen3's vocabulary and chat template: the tools are rendered by the
 * template, a required or named call is always a valid call whose arguments validate (ajv) against the tool's
 * parameters, in every sampling setting, streamed as OpenAI-style deltas that join to the same call; the call and its
 * result go back through the template; a schema feature the engine cannot enforce is reported at the tool. The same
 * required call on Llama 3's vocabulary with the Llama 3.2 template (its JSON call syntax, no opening marker).
 */
import { readFile } from 'node:fs/promises';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLAMA_3_2 } from '../../../test/fixtures/chat-templates.js';
import { withMetadata } from '../../../test/fixtures/gguf-edit.js';
import { makeTestModel, type ModelSpec } from '../../../test/fixtures/models.js';
import { UnsupportedParameterError } from '../errors.js';
import { loadModel } from '../model.js';
import type { ChatMessage, GeneratedToken, Model, ToolDefinition } from '../types.js';
import { joinToolCalls } from './completion.js';

const QWEN: ModelSpec = { arch: 'qwen3', dim: 64, layers: 1, heads: 4, kvHeads: 2, headDim: 16, ffn: 128, vocab: 'qwen3', type: 'Q8_0', ctx: 512, seed: 23 };
const ajv = new Ajv2020.default({ strict: true });

const TOOLS: ToolDefinition[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer', minimum: 1, maximum: 7 } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', pattern: '^[A-Z]{3}$' } }, required: ['zone'], additionalProperties: false } } },
];
const ASK: ChatMessage[] = [{ role: 'user', content: 'What is the weather in Paris?' }];

function expectValidCall(call: { function: { name: string; arguments: string } }) {
  const tool = TOOLS.find((t) => t.function.name === call.function.name);
  expect(tool, call.function.name).toBeDefined();
  const check = ajv.compile(tool!.function.parameters!);
  expect(check(JSON.parse(call.function.arguments)), `${call.function.arguments} ${ajv.errorsText(check.errors)}`).toBe(true);
}

let model: Model;
beforeAll(async () => {
  model = await loadModel(await makeTestModel(QWEN));
});
afterAll(() => model.dispose());

describe('tools through the Qwen3 template', () => {
  it('renders the tools into the system turn; a required call opens the answer with <tool_call>', () => {
    const auto = model.renderChat(ASK, { tools: TOOLS });
    expect(auto.text).toContain('<tools>\n{"type": "function", "function": {"name": "get_weather"');
    expect(auto.text.endsWith('<|im_start|>assistant\n')).toBe(true);
    expect(model.renderChat(ASK, { tools: TOOLS, toolChoice: 'required' }).text).toBe(`${auto.text}<tool_call>\n`);
    // 'none': the tools are not offered at all.
    expect(model.renderChat(ASK, { tools: TOOLS, toolChoice: 'none' }).text).toBe(model.renderChat(ASK).text);
  });

  it("'required' always yields a valid call, greedy and sampled", async () => {
    for (const options of [{ temperature: 0 }, { temperature: 1, seed: 1 }, { temperature: 1.5, seed: 2, topP: 0.95 }, { temperature: 1, seed: 3 }]) {
      const answer = await model.completeChat(ASK, { tools: TOOLS, toolChoice: 'required', maxTokens: 80, ...options });
      expect(answer.finishReason, JSON.stringify(options)).toBe('tool_calls');
      expect(answer.toolCalls).toHaveLength(1);
      expect(answer.content).toBe('');
      expectValidCall(answer.toolCalls![0]!);
    }
  });

  it('a named function is the one called; the stream gives its name first, then arguments that join to the call', async () => {
    const stream = model.chat(ASK, { tools: TOOLS, toolChoice: { type: 'function', function: { name: 'get_time' } }, maxTokens: 60, temperature: 1, seed: 5 });
    const tokens: GeneratedToken[] = [];
    for await (const token of stream) tokens.push(token);
    expect(tokens.every((t) => t.channel === 'tool')).toBe(true);
    const deltas = tokens.flatMap((t) => t.toolCalls ?? []);
    expect(deltas[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_time', arguments: '' } });
    expect(deltas.slice(1).every((d) => d.id === undefined && d.function.name === undefined)).toBe(true);
    const [call] = joinToolCalls(deltas);
    expectValidCall(call!);
    expect((await stream.stats).generatedTokens).toBe(tokens.length);
  });

  it('takes the call and its result back through the template and answers', async () => {
    const call = (await model.completeChat(ASK, { tools: TOOLS, toolChoice: 'required', maxTokens: 80, temperature: 0 })).toolCalls![0]!;
    const turns: ChatMessage[] = [...ASK, { role: 'assistant', content: null, toolCalls: [call] }, { role: 'tool', toolCallId: call.id, content: '{"temperature": 18}' }];
    const rendered = model.renderChat(turns, { tools: TOOLS });
    // The template writes the arguments with Jinja's tojson (", " and ": " between items).
    const args = `{${Object.entries(JSON.parse(call.function.arguments) as object).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')}}`;
    expect(rendered.text).toContain(`<|im_start|>assistant\n<tool_call>\n{"name": "${call.function.name}", "arguments": ${args}}\n</tool_call><|im_end|>\n`);
    expect(rendered.text).toContain('<|im_start|>user\n<tool_response>\n{"temperature": 18}\n</tool_response><|im_end|>\n<|im_start|>assistant\n');
    const answer = await model.completeChat(turns, { tools: TOOLS, toolChoice: 'none', maxTokens: 8, temperature: 0 });
    expect(answer.toolCalls).toBeUndefined();
    expect(answer.tokens).toHaveLength(answer.stats.generatedTokens);
  });

  it("reports a parameters feature the engine cannot enforce at the tool, at the call", () => {
    const tools: ToolDefinition[] = [TOOLS[0]!, { type: 'function', function: { name: 'tag', parameters: { type: 'object', properties: { tags: { type: 'array', uniqueItems: true } } } } }];
    let error: unknown;
    try {
      model.chat(ASK, { tools, toolChoice: 'required' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnsupportedParameterError);
    expect((error as UnsupportedParameterError).parameter).toBe('#/tools/1/function/parameters/properties/tags/uniqueItems');
  });
});

/** The file with its own template's key renamed (same length, so nothing moves): the vocabulary's is Llama 3's, without tools. */
function withoutTemplate(gguf: Uint8Array): Uint8Array {
  const key = new TextEncoder().encode('tokenizer.chat_template');
  const at = Buffer.from(gguf).indexOf(key);
  expect(at).toBeGreaterThan(0);
  const out = gguf.slice();
  out[at + key.length - 1] = 'X'.charCodeAt(0);
  return out;
}

describe('tools through the Llama 3.2 template', () => {
  it("'required' answers with {\"name\", \"parameters\"} only, read into a valid call", async () => {
    const spec: ModelSpec = { dim: 64, layers: 1, heads: 4, kvHeads: 2, ffn: 128, vocab: 'llama3', type: 'Q8_0', ctx: 512, seed: 24 };
    const file = withMetadata(withoutTemplate(await readFile(await makeTestModel(spec))), [{ key: 'tokenizer.chat_template', type: 'string', value: LLAMA_3_2 }]);
    const llama = await loadModel(file);
    try {
      expect(llama.renderChat(ASK, { tools: TOOLS, toolChoice: 'required' }).text.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n')).toBe(true);
      const stream = llama.chat(ASK, { tools: TOOLS, toolChoice: 'required', maxTokens: 80, temperature: 1, seed: 6 });
      const text: string[] = [];
      const deltas = [];
      for await (const token of stream) (text.push(token.text), deltas.push(...(token.toolCalls ?? [])));
      expect(JSON.parse(text.join(''))).toMatchObject({ name: expect.any(String), parameters: expect.any(Object) });
      const [call] = joinToolCalls(deltas);
      expectValidCall(call!);
      expect(JSON.parse(call!.function.arguments)).toEqual(JSON.parse(text.join('')).parameters);
    } finally {
      llama.dispose();
    }
  });
});
