import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestModel, STANDARD_SPECS } from '../fixtures/models.js';
import { buildVocab } from '../fixtures/vocab.js';
import { argmax } from '../reference/compare.js';
import { openLlamaCpp, type LlamaCppModel } from './llamacpp.js';

describe.each(['f32_llama', 'f16_gpt2_gqa'] as const)('llama.cpp oracle on %s', (name) => {
  const spec = STANDARD_SPECS[name]!;
  let oracle: LlamaCppModel;
  beforeAll(async () => {
    oracle = await openLlamaCpp(await makeTestModel(spec));
  });
  afterAll(() => oracle?.dispose());

  it('loads the fixture with its vocabulary', () => {
    const vocab = buildVocab(spec.vocab);
    expect(oracle.nVocab).toBe(vocab.tokens.length);
    expect(oracle.bosId).toBe(vocab.bosId);
    expect(oracle.eosId).toBe(vocab.eosId);
  });

  it('tokenizes and detokenizes text round trip', () => {
    const text = 'The quick brown fox, 2024-03-15: café 🚀\nnew line';
    const ids = oracle.tokenize(text, { addBos: false });
    expect(ids.length).toBeGreaterThan(5);
    expect(ids.length).toBeLessThan(Buffer.byteLength(text));
    expect(oracle.detokenize(ids).trimStart()).toBe(text);
    const withBos = oracle.tokenize(text);
    if (spec.vocab === 'llama') expect(withBos).toEqual([1, ...ids]);
    else expect(withBos).toEqual(ids);
  });

  it('generates exactly n greedy tokens, the same every time, matching the argmax of its logits', async () => {
    const prompt = oracle.tokenize('Once upon a time');
    const a = await oracle.greedy(prompt, 24);
    const b = await oracle.greedy(prompt, 24);
    expect(a).toHaveLength(24);
    expect(b).toEqual(a);
    const logits = await oracle.logits([...prompt, ...a.slice(0, -1)]);
    const teacherForced = logits.slice(prompt.length - 1).map(argmax);
    expect(teacherForced).toEqual(a);
  });
});
