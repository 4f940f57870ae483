/**
 * One measurement per engine, the same in Node and inside workerd: prepare the vocabulary, compile a JSON Schema,
 * then follow a fixed token sequence (a valid output), asking for the mask before each token.
 * "cold" is the first pass (masks computed as states are first met); "warm" a second pass from a fresh start
 * on the same compiled grammar (what later requests with the same schema pay).
 */
import { compileConstraint, type JsonSchema } from '../../sdk/src/grammar/index.js';
import type { ConstraintVocab } from '../../sdk/src/grammar/token-trie.js';

export interface EngineFigures {
  /** Vocabulary preparation (once per model): our token trie, xgrammar's TokenizerInfo + compiler. */
  vocabMs: number;
  /** Grammar compilation (once per schema). */
  compileMs: number;
  /** Mean mask + advance cost per token on the first pass, and on a second pass. */
  coldUsPerToken: number;
  warmUsPerToken: number;
  /** The slowest single mask of the first pass. */
  coldMaxMs: number;
  /** Whether every token of the sequence was allowed and the end was reached. */
  accepted: boolean;
}

const now = () => performance.now();

export function measureOurs(makeVocab: () => ConstraintVocab, schema: JsonSchema, ids: number[], eos: number): EngineFigures {
  let t = now();
  const vocab = makeVocab();
  // The trie is built on first use of a tokenizer: a throwaway schema pays for it here.
  compileConstraint({ type: 'json_schema', schema: { type: 'null' } }, vocab);
  const vocabMs = now() - t;
  t = now();
  const constraint = compileConstraint({ type: 'json_schema', schema }, vocab)!;
  const compileMs = now() - t;
  const pass = () => {
    let state = constraint.start();
    let worst = 0;
    let ok = true;
    const start = now();
    for (const id of [...ids, eos]) {
      const t0 = now();
      const mask = state.mask();
      worst = Math.max(worst, now() - t0);
      ok &&= ((mask[id >>> 5]! >>> (id & 31)) & 1) === 1;
      const next = state.advance(id);
      if (!next) return { us: NaN, worst, ok: false };
      state = next;
    }
    return { us: ((now() - start) * 1000) / (ids.length + 1), worst, ok: ok && state.isComplete() };
  };
  const cold = pass();
  const warm = pass();
  return { vocabMs, compileMs, coldUsPerToken: cold.us, warmUsPerToken: warm.us, coldMaxMs: cold.worst, accepted: cold.ok && warm.ok };
}

/** The subset of @mlc-ai/web-xgrammar's API used here (from the extracted module, xgrammar-bundle.mjs). */
export interface XGrammarModule {
  TokenizerInfo: { createTokenizerInfo(vocab: string[], type: string, prependSpace: boolean, size: number, stop: number[]): Promise<unknown> };
  GrammarCompiler: { createGrammarCompiler(info: unknown): Promise<{ compileJSONSchema(schema: string): Promise<unknown> }> };
  GrammarMatcher: {
    createGrammarMatcher(compiled: unknown): Promise<{ getNextTokenBitmask(): Promise<Int32Array>; acceptToken(id: number): boolean; isTerminated(): boolean; dispose(): void }>;
  };
}

export async function measureXGrammar(xg: XGrammarModule, encodedVocab: string[], schema: JsonSchema, ids: number[], eos: number): Promise<EngineFigures> {
  let t = now();
  const info = await xg.TokenizerInfo.createTokenizerInfo(encodedVocab, 'byte_level', false, encodedVocab.length, [eos]);
  const compiler = await xg.GrammarCompiler.createGrammarCompiler(info);
  const vocabMs = now() - t;
  t = now();
  const compiled = await compiler.compileJSONSchema(JSON.stringify(schema));
  const compileMs = now() - t;
  const pass = async () => {
    const matcher = await xg.GrammarMatcher.createGrammarMatcher(compiled);
    let worst = 0;
    let ok = true;
    const start = now();
    for (const id of [...ids, eos]) {
      const t0 = now();
      const mask = await matcher.getNextTokenBitmask();
      worst = Math.max(worst, now() - t0);
      ok &&= ((mask[id >>> 5]! >>> (id & 31)) & 1) === 1;
      ok &&= matcher.acceptToken(id);
    }
    const us = ((now() - start) * 1000) / (ids.length + 1);
    ok &&= matcher.isTerminated();
    matcher.dispose();
    return { us, worst, ok };
  };
  const cold = await pass();
  const warm = await pass();
  return { vocabMs, compileMs, coldUsPerToken: cold.us, warmUsPerToken: warm.us, coldMaxMs: cold.worst, accepted: cold.ok && warm.ok };
}

/** The benchmark's schema (an API-style record) and an output for it. */
export const BENCH_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string', maxLength: 40 },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    email: { type: 'string' },
    address: {
      type: 'object',
      properties: { street: { type: 'string' }, city: { type: 'string' }, zip: { type: 'string', pattern: '^[0-9]{5}$' } },
      required: ['street', 'city', 'zip'],
      additionalProperties: false,
    },
    tags: { type: 'array', items: { type: 'string', enum: ['admin', 'editor', 'viewer'] }, minItems: 1, maxItems: 3 },
    score: { type: 'number', minimum: 0, maximum: 100 },
    active: { type: 'boolean' },
  },
  required: ['id', 'name', 'age', 'email', 'address', 'tags', 'score', 'active'],
  additionalProperties: false,
};

export const BENCH_OUTPUT = JSON.stringify(
  {
    id: '3f2b8c1e-9a4d-4e6f-8b2a-1c5d7e9f0a3b',
    name: 'Ada Lovelace',
    age: 36,
    email: 'ada@analytical-engine.org',
    address: { street: '12 St James Square', city: 'London', zip: '10001' },
    tags: ['admin', 'viewer'],
    score: 99.5,
    active: true,
  },
  null,
  1,
).replace(/\n +/g, ' ').replace(/\n/g, '');
