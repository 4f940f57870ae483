import Ajv2020 from 'ajv/dist/2020.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { qwenVocab, sdkTokenizer, VOCAB_SIZES } from '../../../bench/grammar/vocabularies.js';
import type { GGUFKV } from '../../../test/fixtures/gguf-writer.js';
import { buildVocab } from '../../../test/fixtures/vocab.js';
import type { GGUFMetadata } from '../gguf/types.js';
import { createTokenizer } from '../tokenizer/index.js';
import { maskHas, randomWalk } from '../../../bench/grammar/walk.js';
import { UnsupportedParameterError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { compileConstraint, type JsonSchema, type ResponseFormat } from './constraint.js';

/** Schemas covering what the issue lists: nested objects, arrays with bounds, enums, ranges, optional keys, patterns. */
export const SCHEMAS: Record<string, JsonSchema> = {
  person: {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 12 },
      age: { type: 'integer', minimum: 0, maximum: 150 },
      email: { type: 'string', pattern: '^[a-z]{1,8}@[a-z]{1,8}\\.(com|org)$' },
      nickname: { type: 'string', maxLength: 6 },
    },
    required: ['name', 'age'],
    additionalProperties: false,
  },
  nested: {
    type: 'object',
    properties: {
      id: { type: 'string', format: 'uuid' },
      contact: { type: 'object', properties: { email: { type: 'string', format: 'email' }, site: { type: 'string', format: 'uri' }, ip: { type: 'string', format: 'ipv4' } }, required: ['email', 'site', 'ip'] },
      address: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 10 }, zip: { type: 'string', pattern: '^[0-9]{5}$' }, geo: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 } },
        required: ['city', 'geo'],
      },
      tags: { type: 'array', items: { enum: ['red', 'green', 'blue'] }, minItems: 1, maxItems: 3 },
    },
    required: ['id', 'address', 'tags'],
  },
  ranges: {
    type: 'object',
    properties: {
      ratio: { type: 'number', minimum: 0, maximum: 1 },
      temperature: { type: 'number', exclusiveMinimum: -273.15, maximum: 1e4 },
      delta: { type: 'number', minimum: -2.5, exclusiveMaximum: 2.5 },
      small: { type: 'number', exclusiveMinimum: 0.001, exclusiveMaximum: 0.002 },
      count: { type: 'integer', exclusiveMinimum: -10, exclusiveMaximum: 1000 },
      year: { type: 'integer', minimum: 1900, maximum: 2100 },
      big: { type: 'number', minimum: 1e6 },
    },
    required: ['ratio', 'temperature', 'delta', 'small', 'count', 'year', 'big'],
    additionalProperties: false,
  },
  choices: {
    type: 'object',
    properties: {
      kind: { const: 'event' },
      when: { type: 'string', format: 'date-time' },
      day: { type: 'string', format: 'date' },
      payload: { anyOf: [{ type: 'null' }, { type: 'boolean' }, { type: 'object', properties: { code: { type: 'integer' } }, required: ['code'] }] },
      level: { oneOf: [{ type: 'string', enum: ['low', 'high'] }, { type: 'integer', minimum: 1, maximum: 5 }] },
    },
    required: ['kind', 'when', 'payload', 'level'],
  },
  tree: {
    $defs: {
      node: {
        type: 'object',
        properties: { value: { type: 'integer' }, children: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 } },
        required: ['value'],
        additionalProperties: false,
      },
    },
    $ref: '#/$defs/node',
  },
  tuple: { type: 'array', prefixItems: [{ type: 'string', maxLength: 3 }, { type: 'boolean' }], items: { type: 'null' }, minItems: 2, maxItems: 4 },
  map: { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } },
  anything: {},
};

const ajv = new Ajv2020.default({ strict: true, strictTuples: false, allErrors: true });
ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
const validDate = (s: string) => {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!));
  return d.getUTCMonth() === +m[2]! - 1 && d.getUTCDate() === +m[3]!;
};
const TIME = /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;
// Looser than the grammar's forms: these check that outputs are what the format names, not how they are spelled.
ajv.addFormat('email', /^[^\s@"]+@[^\s@"]+\.[a-z]{2,}$/);
ajv.addFormat('uri', { validate: (s: string) => URL.canParse(s) && /^https?:\/\/[a-z0-9]/.test(s) });
ajv.addFormat('ipv4', { validate: (s: string) => s.split('.').length === 4 && s.split('.').every((p) => /^(0|[1-9]\d*)$/.test(p) && +p <= 255) });
ajv.addFormat('date', { validate: (s: string) => /^\d{4}-\d{2}-\d{2}$/.test(s) && validDate(s) });
ajv.addFormat('date-time', { validate: (s: string) => validDate(s) && s[10] === 'T' && TIME.test(s.slice(11)) });

const decoder = new TextDecoder('utf-8', { fatal: true });

/** A walk's output parsed and checked against the schema; throws with the text when it is not valid. */
function expectValid(schema: JsonSchema, bytes: Uint8Array): unknown {
  const text = decoder.decode(bytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${text}\n${String(e)}`);
  }
  const validate = ajv.compile(schema as object);
  if (!validate(value)) throw new Error(`invalid: ${text}\n${ajv.errorsText(validate.errors)}`);
  return value;
}

describe.each(Object.entries(VOCAB_SIZES))('random walks on a %s vocabulary', (_label, size) => {
  let tok: Tokenizer;
  beforeAll(() => {
    tok = sdkTokenizer(qwenVocab(size));
  });

  it.each(Object.keys(SCHEMAS))('%s: every walk parses and validates; EOS exactly when complete', (name) => {
    const schema = SCHEMAS[name]!;
    const constraint = compileConstraint({ type: 'json_schema', schema }, tok)!;
    for (let seed = 1; seed <= 4; seed++) {
      let ends = 0;
      const walk = randomWalk(constraint.start(), tok, seed * 7919 + size, 40, (state, bytes) => {
        // End-of-generation is offered exactly where the output so far is a complete, valid value.
        expect(maskHas(state.mask(), tok.eos!)).toBe(state.canEnd());
        if (state.canEnd()) (ends++, expectValid(schema, bytes));
      });
      expect(walk.ended).toBe(true);
      expect(ends).toBeGreaterThan(0);
      expectValid(schema, walk.bytes);
    }
  });
});

describe('a SentencePiece vocabulary (▁ for spaces, <0xNN> byte tokens)', () => {
  it.each(['person', 'nested', 'choices'])('%s: walks parse and validate', (name) => {
    const metadata: GGUFMetadata = Object.fromEntries(
      buildVocab('llama', 2000).metadata.map((kv: GGUFKV) => [kv.key, kv.type === 'array' && kv.itemType === 'string' ? [...(kv.value as string[])] : (kv.value as GGUFMetadata[string])]),
    );
    const tok = createTokenizer(metadata);
    expect(tok.kind).toBe('llama');
    const constraint = compileConstraint({ type: 'json_schema', schema: SCHEMAS[name]! }, tok)!;
    for (let seed = 1; seed <= 4; seed++) {
      const walk = randomWalk(constraint.start(), tok, seed, 40);
      expect(walk.ended).toBe(true);
      expectValid(SCHEMAS[name]!, walk.bytes);
    }
  });
});

describe('json_object and forms', () => {
  let tok: Tokenizer;
  beforeAll(() => {
    tok = sdkTokenizer(qwenVocab(VOCAB_SIZES['49k']));
  });

  it('json_object walks give JSON objects', () => {
    const constraint = compileConstraint({ type: 'json_object' }, tok)!;
    for (let seed = 1; seed <= 6; seed++) {
      const walk = randomWalk(constraint.start(), tok, seed, 60);
      const value = JSON.parse(decoder.decode(walk.bytes));
      expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
    }
  });

  it('accepts the text a model would write, token by token, and ends only after it', () => {
    const constraint = compileConstraint({ type: 'json_schema', schema: SCHEMAS.person! }, tok)!;
    const text = '{"name": "Ada", "age": 36, "email": "ada@math.org"}';
    let state = constraint.start();
    for (const id of tok.encode(text, { addSpecial: false })) {
      expect(state.canEnd()).toBe(false);
      state = state.advance(id)!;
      expect(state).not.toBeNull();
    }
    expect(state.canEnd()).toBe(true);
    expect(state.isComplete()).toBe(true);
    expect(state.advance(tok.eos!)!.isComplete()).toBe(true);
  });

  it('refuses texts the schema rejects', () => {
    const constraint = compileConstraint({ type: 'json_schema', schema: SCHEMAS.person! }, tok)!;
    const accepts = (text: string) => {
      let state = constraint.start();
      for (const id of tok.encode(text, { addSpecial: false })) {
        const next = state.advance(id);
        if (!next) return false;
        state = next;
      }
      return state.canEnd();
    };
    expect(accepts('{"name": "Ada", "age": 36}')).toBe(true);
    expect(accepts('{"age": 36, "name": "Ada"}')).toBe(false); // schema order
    expect(accepts('{"name": "Ada", "age": 151}')).toBe(false);
    expect(accepts('{"name": "Ada", "age": -1}')).toBe(false);
    expect(accepts('{"name": "", "age": 3}')).toBe(false); // minLength 1
    expect(accepts('{"name": "Ada", "age": 3, "email": "ADA@x.com"}')).toBe(false); // pattern
    expect(accepts('{"name": "Ada"}')).toBe(false); // required
    expect(accepts('{"name": "Ada", "age": 36, "extra": 1}')).toBe(false);
  });

  it('closes within bytesToClose tokens by following closing masks', () => {
    const constraint = compileConstraint({ type: 'json_schema', schema: SCHEMAS.nested! }, tok)!;
    for (let seed = 1; seed <= 5; seed++) {
      const free = randomWalk(constraint.start(), tok, seed, 25);
      const before = free.states[25]!;
      const budget = before.bytesToClose();
      const closingSteps = free.ids.length - 25 - 1; // minus EOS
      expect(closingSteps).toBeLessThanOrEqual(budget);
      expectValid(SCHEMAS.nested!, free.bytes);
    }
  });

  it('states are values: branching and rolling back do not disturb each other', () => {
    const constraint = compileConstraint({ type: 'json_schema', schema: SCHEMAS.choices! }, tok)!;
    const s0 = constraint.start().advance(tok.encode('{"', { addSpecial: false })[0]!)!;
    const before = Array.from(s0.mask());
    const a = s0.advance(tok.encode('kind', { addSpecial: false })[0]!);
    expect(a).not.toBeNull();
    expect(s0.advance(tok.encode('when', { addSpecial: false })[0]!)).toBeNull();
    expect(Array.from(s0.mask())).toEqual(before);
    expect(s0.allows(tok.encode('kind', { addSpecial: false })[0]!)).toBe(true);
  });

  it('refuses features it cannot enforce, by name', () => {
    const cases: Array<[JsonSchema, string]> = [
      [{ type: 'array', uniqueItems: true }, '#/uniqueItems'],
      [{ type: 'object', minProperties: 1 }, '#/minProperties'],
      [{ type: 'object', patternProperties: { '^x': {} } }, '#/patternProperties'],
      [{ not: { type: 'string' } }, '#/not'],
      [{ if: { type: 'string' }, then: {} }, '#/if'],
      [{ type: 'number', multipleOf: 3 }, '#/multipleOf'],
      [{ allOf: [{ type: 'string' }, { maxLength: 3 }] }, '#/allOf'],
      [{ $ref: 'https://example.com/s.json' }, '#/$ref'],
      [{ type: 'object', properties: { a: { type: 'string', format: 'hostname' } } }, '#/properties/a/format'],
      [{ type: 'string', pattern: '(a)\\1' }, '#/pattern'],
      [{ type: 'string', pattern: 'a(?=b)' }, '#/pattern'],
      [{ type: 'string', pattern: '^a+', minLength: 2 }, '#/pattern'],
      [{ type: 'object', properties: { a: { type: 'string' } }, anyOf: [{ required: ['a'] }] }, '#/anyOf'],
    ];
    for (const [schema, parameter] of cases) {
      const attempt = () => compileConstraint({ type: 'json_schema', schema }, tok);
      expect(attempt).toThrow(UnsupportedParameterError);
      try {
        attempt();
      } catch (e) {
        expect((e as UnsupportedParameterError).code).toBe('UNSUPPORTED_PARAMETER');
        expect((e as UnsupportedParameterError).parameter).toBe(parameter);
        expect((e as Error).message).toContain(parameter.split('/').pop()!.replace(/^\$ref$/, '$ref'));
      }
    }
  });

  it('forced text: what the grammar dictates next, cut into allowed tokens', () => {
    const schema = { type: 'object', properties: { name: { enum: ['alpha', 'beta'] }, n: { type: 'integer' } }, required: ['name', 'n'] };
    const constraint = compileConstraint({ type: 'json_schema', schema }, tok)!;
    const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    const after = (prefix: string) => tok.encode(prefix, { addSpecial: false }).reduce((s, id) => s.advance(id)!, constraint.start());
    expect(text(constraint.start().forcedBytes())).toBe('{');
    expect(text(after('{"').forcedBytes())).toBe('name":'); // then optional whitespace
    expect(text(after('{"name": "a').forcedBytes())).toBe('lpha",'); // no whitespace before a comma
    expect(text(after('{"name": "alpha", "n": 1').forcedBytes())).toBe(''); // more digits, or the end
    for (const prefix of ['{"', '{"name": "a', '{"name": "beta",']) {
      const state = after(prefix);
      const ids = state.forcedTokens();
      expect(tok.decode(ids)).toBe(text(state.forcedBytes()));
      // Each drafted token is allowed in turn.
      ids.reduce((s, id) => s.advance(id)!, state);
    }
  });

  it('keeps the last few compiled formats per tokenizer', () => {
    const format = (n: number): ResponseFormat => ({ type: 'json_schema', schema: { type: 'integer', minimum: n } });
    const first = compileConstraint(format(1), tok);
    expect(compileConstraint(format(1), tok)).toBe(first);
    for (let n = 2; n <= 5; n++) compileConstraint(format(n), tok);
    expect(compileConstraint(format(1), tok)).not.toBe(first); // evicted by four newer ones
  });

  it('rejects malformed formats and schemas with INVALID_ARGUMENT', () => {
    const bad: ResponseFormat[] = [
      { type: 'json_schema', schema: { type: 'strin' } },
      { type: 'json_schema', schema: { type: 'object', required: 'a' } },
      { type: 'json_schema', schema: { $ref: '#/$defs/missing' } },
      { type: 'json_schema', schema: { type: 'integer', minimum: 5, maximum: 1 } },
      { type: 'nope' } as unknown as ResponseFormat,
    ];
    for (const format of bad) expect(() => compileConstraint(format, tok), JSON.stringify(format)).toThrow(/./);
    for (const format of bad) {
      try {
        compileConstraint(format, tok);
      } catch (e) {
        expect((e as { code: string }).code).toBe('INVALID_ARGUMENT');
      }
    }
    expect(compileConstraint({ type: 'text' }, tok)).toBeNull();
  });
});
