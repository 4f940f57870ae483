/** The committed demo model and its recycle head (models/demo): exact decoding is lossless, the head earns its keep. */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../sdk/src/index.js';
import type { Model } from '../sdk/src/index.js';

const demo = (file: string) => fileURLToPath(new URL(`../models/demo/${file}`, import.meta.url));
const PROMPTS = ['The function returns', 'In the beginning', 'To install the package, run', 'A hacker is a person who'];

describe.each(['demo-q8_0.gguf', 'demo-q4_0.gguf', 'demo-f16.gguf'])('%s with demo-recycle.gguf', (file) => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(demo(file), { recycle: demo('demo-recycle.gguf') });
  });
  afterAll(() => model.dispose());

  it('decodes identically in off, exact and chain modes (greedy)', async () => {
    let proposed = 0;
    let kept = 0;
    for (const prompt of PROMPTS) {
      const off = await model.complete(prompt, { maxTokens: 48, temperature: 0 });
      // Not adaptive: the acceptance figures below need drafting on for the whole run.
      const exact = await model.complete(prompt, { maxTokens: 48, temperature: 0, decode: { mode: 'exact', adaptive: false } });
      const chain = await model.complete(prompt, { maxTokens: 48, temperature: 0, decode: { mode: 'chain', draftLength: 3, adaptive: false } });
      const adaptive = await model.complete(prompt, { maxTokens: 48, temperature: 0, decode: { mode: 'exact' } });
      expect(exact.tokens).toEqual(off.tokens);
      expect(chain.tokens).toEqual(off.tokens);
      expect(adaptive.tokens).toEqual(off.tokens);
      expect(exact.text).toBe(off.text);
      expect(exact.stats.fullPasses).toBeLessThan(off.stats.fullPasses);
      kept += exact.stats.recycled;
      proposed += exact.stats.recycled / exact.stats.acceptanceRate!;
    }
    // The model card reports ~0.64 greedy acceptance on held-out text.
    expect(kept / proposed).toBeGreaterThan(0.3);
  });

  it('runs one full pass per two tokens in fast mode and writes readable text', async () => {
    const fast = await model.complete(PROMPTS[0]!, { maxTokens: 33, temperature: 0, decode: { mode: 'fast' } });
    if (fast.finishReason === 'length') expect(fast.stats.fullPasses).toBe(16);
    expect(fast.text).toMatch(/[a-z]{3,} [a-z]{2,}/);
  });
});
