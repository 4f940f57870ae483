/**
 * `responseFormat` on random-weight models with real vocabularies (SmolLM2's 49k layout; Qwen3's 151k with its chat
 * template): every output parses and validates with ajv; exact, chain and jump-forward give constrained plain
 * decoding's tokens; fast stays valid; maxTokens closes the output or cuts it with `length`.
 */
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestModel, type ModelSpec } from '../../../test/fixtures/models.js';
import { buildHeadGGUF, COPY_HEAD } from '../../../test/fixtures/recycle-head.js';
import { UnsupportedParameterError } from '../errors.js';
import type { JsonSchema } from '../grammar/index.js';
import { loadModel } from '../model.js';
import type { Completion, DecodeMode, GenerateOptions, Model } from '../types.js';

const SMOL: ModelSpec = { dim: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 128, vocab: 'smollm', type: 'Q8_0', ctx: 512, seed: 21 };
const QWEN: ModelSpec = { arch: 'qwen3', dim: 64, layers: 1, heads: 4, kvHeads: 2, headDim: 16, ffn: 128, vocab: 'qwen3', type: 'Q8_0', ctx: 512, seed: 22 };

const ajv = new Ajv2020.default({ strict: true, allErrors: true });

const SCHEMAS: Record<string, JsonSchema> = {
  person: {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 16 },
      age: { type: 'integer', minimum: 0, maximum: 130 },
      email: { type: 'string', pattern: '^[a-z]{1,8}@[a-z]{1,8}\\.(com|org)$' },
      address: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 12 }, zip: { type: 'string', pattern: '^[0-9]{5}$' } },
        required: ['zip'],
        additionalProperties: false,
      },
    },
    required: ['name', 'age', 'address'],
    additionalProperties: false,
  },
  order: {
    type: 'object',
    properties: {
      id: { type: 'string', pattern: '^[A-Z]{2}-[0-9]{3}$' },
      status: { enum: ['pending', 'shipped', 'delivered'] },
      items: {
        type: 'array',
        minItems: 1,
        maxItems: 3,
        items: {
          type: 'object',
          properties: { sku: { type: 'string', maxLength: 6 }, qty: { type: 'integer', minimum: 1, maximum: 9 }, price: { type: 'number', exclusiveMinimum: 0, maximum: 100 } },
          required: ['sku', 'qty'],
          additionalProperties: false,
        },
      },
      gift: { type: 'boolean' },
      note: { type: ['string', 'null'], maxLength: 10 },
    },
    required: ['id', 'status', 'items'],
    additionalProperties: false,
  },
  scores: { type: 'array', items: { type: 'number', minimum: -1, maximum: 1 }, minItems: 2, maxItems: 4 },
};

function validate(schema: JsonSchema | 'object', text: string): void {
  const value: unknown = JSON.parse(text);
  if (schema === 'object') {
    expect(typeof value === 'object' && value !== null && !Array.isArray(value), text).toBe(true);
    return;
  }
  const check = ajv.compile(schema as object);
  expect(check(value), `${text}\n${ajv.errorsText(check.errors)}`).toBe(true);
}

const PROMPTS = ['Reply in JSON:', 'The record for order 17 is', '{"'];

describe('responseFormat on a 49k-vocabulary model with a recycle head', () => {
  let model: Model;
  beforeAll(async () => {
    const path = await makeTestModel(SMOL);
    model = await loadModel(path, { recycle: buildHeadGGUF(path, COPY_HEAD) });
  });
  afterAll(() => model.dispose());

  const run = (prompt: string, format: GenerateOptions['responseFormat'], mode: DecodeMode, extra: GenerateOptions = {}): Promise<Completion> =>
    model.complete(prompt, { maxTokens: 160, temperature: 0, responseFormat: format, ...extra, decode: { mode, adaptive: false, ...extra.decode } });

  for (const name of [...Object.keys(SCHEMAS), 'json_object']) {
    it(`${name}: valid in every mode; exact, chain and jump-forward give plain decoding's tokens`, async () => {
      const format: GenerateOptions['responseFormat'] = name === 'json_object' ? { type: 'json_object' } : { type: 'json_schema', schema: SCHEMAS[name]!, strict: true };
      const schema = name === 'json_object' ? 'object' : SCHEMAS[name]!;
      let grammarKept = 0;
      // Free-form objects run to the budget (a random model writes long strings): fewer, shorter runs.
      const limits = name === 'json_object' ? { maxTokens: 96 } : {};
      for (const prompt of name === 'json_object' ? PROMPTS.slice(1) : PROMPTS) {
        const off = await run(prompt, format, 'off', { ...limits, decode: { mode: 'off', jumpForward: false } });
        expect(off.finishReason, off.text).toBe('stop');
        validate(schema, off.text);
        for (const [mode, jumpForward] of [['off', true], ['exact', false], ['exact', true], ['chain', true]] as const) {
          const out = await run(prompt, format, mode, { ...limits, decode: { mode, jumpForward } });
          expect(out.tokens, `${mode} jumpForward ${jumpForward}`).toEqual(off.tokens);
          grammarKept += out.stats.grammarKept ?? 0;
        }
        const fast = await run(prompt, format, 'fast', limits);
        validate(schema, fast.text);
        const sampled = await run(prompt, format, 'exact', { ...limits, temperature: 0.9, seed: 5, repeatPenalty: 1.1 });
        expect(sampled.finishReason).toBe('stop');
        validate(schema, sampled.text);
      }
      if (name === 'person' || name === 'order') expect(grammarKept, 'jump-forward kept some drafts').toBeGreaterThan(0);
    });
  }

  it('closes within maxTokens where the format still can, else stops with length', async () => {
    // The shortest order, {"id":"AA-000","status":"pending","items":[{"sku":"","qty":1}]}, is 65 bytes: a budget of
    // 66 tokens closes it even one byte a token; with less the sampled output may or may not fit.
    const format = { type: 'json_schema' as const, schema: SCHEMAS.order! };
    for (const maxTokens of [8, 24, 66, 72, 90]) {
      for (const mode of ['off', 'exact'] as const) {
        for (const seed of [1, 2]) {
          const out = await run(PROMPTS[0]!, format, mode, { maxTokens, temperature: 1, seed });
          if (maxTokens >= 66) expect(out.finishReason, `${maxTokens} ${mode} ${seed}`).toBe('stop');
          if (out.finishReason === 'stop') validate(SCHEMAS.order!, out.text);
          else expect(out.tokens).toHaveLength(maxTokens);
          if (maxTokens < 10) expect(out.finishReason).toBe('length');
        }
      }
    }
  });

  it('refuses unsupported schema features and bad formats at the call, naming them', () => {
    const call = (responseFormat: unknown) => () => model.generate('x', { responseFormat: responseFormat as GenerateOptions['responseFormat'] });
    expect(call({ type: 'json_schema', schema: { type: 'object', minProperties: 1 } })).toThrow(UnsupportedParameterError);
    expect(call({ type: 'json_schema', schema: { type: 'object', minProperties: 1 } })).toThrow(/minProperties/);
    expect(call({ type: 'json_schema' })).toThrow(/needs a "schema"/);
    expect(call({ type: 'grammar', grammar: 'root ::= nothing' })).toThrow(/undefined rule/);
  });
});

describe('responseFormat through chat() on a 151k-vocabulary model with its template', () => {
  it('answers with valid JSON, the same in every verified mode', async () => {
    const model = await loadModel(await makeTestModel(QWEN));
    const messages = [{ role: 'user' as const, content: 'Give me a person as JSON.' }];
    const options = { maxTokens: 120, temperature: 0, responseFormat: { type: 'json_schema' as const, schema: SCHEMAS.person! }, templateOptions: { enable_thinking: false } };
    const plain = await model.completeChat(messages, { ...options, decode: { mode: 'off', jumpForward: false } });
    const jumped = await model.completeChat(messages, { ...options, decode: { mode: 'off', adaptive: false } });
    expect(plain.finishReason).toBe('stop');
    validate(SCHEMAS.person!, plain.content);
    expect(jumped.tokens).toEqual(plain.tokens);
    expect(jumped.stats.grammarKept).toBeGreaterThan(0);
    // With the template's thinking on, the formatted answer is still all content (no reasoning channel).
    const thinking = await model.completeChat(messages, { ...options, templateOptions: {}, temperature: 0.8, seed: 3 });
    expect(thinking.reasoning).toBeUndefined();
    validate(SCHEMAS.person!, thinking.content);
    model.dispose();
  });
});
