import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTestModel, STANDARD_SPECS } from '../fixtures/models.js';
import { openLlamaCpp, type LlamaCppModel } from '../oracle/llamacpp.js';
import { argmax, relativeError } from './compare.js';
import { loadReferenceLlama } from './llama-f64.js';

// Fixtures covering both tokenizers, GQA, tied output and odd sizes (dim 96, 3 heads, ffn 200).
// Measured worst relative logit errors: F32 ~4e-7; Q8_0/Q4_0 with activation rounding emulated ~1e-7;
// F16 ~5e-4 (~4e-4 emulated: llama.cpp's F16 path rounds more than the activations alone, not pinned down).
const cases = [
  { name: 'f32_llama', tolerance: 1e-5 },
  { name: 'f32_odd', tolerance: 1e-5 },
  { name: 'f16_gpt2_gqa', tolerance: 2e-3, emulateActivationRounding: true },
  { name: 'f16_llama_tied', tolerance: 2e-3 },
  // Quantized weights: with activations rounded to Q8_0 as llama.cpp does, the reference follows it closely.
  { name: 'q8_odd_gqa', tolerance: 1e-4, emulateActivationRounding: true },
  { name: 'q4_gpt2', tolerance: 1e-4, emulateActivationRounding: true },
  { name: 'q8_llama_tied', tolerance: 1e-4, emulateActivationRounding: true },
  // llama.cpp's default f16 KV cache: it rounds K, V, the query and the softmax probabilities to f16 (measured ~1e-7).
  { name: 'q8_odd_gqa', tolerance: 1e-4, emulateActivationRounding: true, emulateF16KvCache: true },
];

describe.each(cases)('f64 reference vs llama.cpp on $name', ({ name, tolerance, emulateActivationRounding, emulateF16KvCache }) => {
  const opened: LlamaCppModel[] = [];
  afterAll(async () => {
    for (const m of opened) await m.dispose();
  });

  it('gives llama.cpp greedy tokens for 32 steps and logits within its rounding', async () => {
    const path = await makeTestModel(STANDARD_SPECS[name]!);
    const reference = loadReferenceLlama(readFileSync(path), { emulateActivationRounding, emulateF16KvCache });
    const oracle = await openLlamaCpp(path, { kvType: emulateF16KvCache ? 'f16' : 'f32' });
    opened.push(oracle);
    const prompt = oracle.tokenize('Once upon a time there was a lighthouse');

    const expected = await oracle.greedy(prompt, 32);
    expect(reference.greedy(prompt, 32)).toEqual(expected);

    const ids = [...prompt, ...expected.slice(0, 16)];
    const ours = reference.forward(ids);
    const theirs = await oracle.logits(ids);
    const worst = Math.max(...ours.map((row, i) => relativeError(row, theirs[i]!)));
    expect(worst).toBeLessThan(tolerance);
    expect(ours.map(argmax)).toEqual(theirs.map(argmax));
  });
});
