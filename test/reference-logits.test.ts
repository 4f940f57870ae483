/**
 * The SDK's logits against the f64 reference forward on F32 fixtures, with an f32 KV cache so that the
 * only differences are f32 accumulation order: every position within 1e-4 of the row's largest |logit|.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { makeTestModel, STANDARD_SPECS } from './fixtures/models.js';
import { argmax, relativeError } from './reference/compare.js';
import { loadReferenceLlama } from './reference/llama-f64.js';
import { importSdk, SDK_MISSING_REASON, SDK_READY } from './sdk.js';

const F32_FIXTURES = Object.keys(STANDARD_SPECS).filter((name) => STANDARD_SPECS[name]!.type === 'F32');

describe.skipIf(!SDK_READY)(`SDK logits vs f64 reference${SDK_READY ? '' : ` (skipped: ${SDK_MISSING_REASON})`}`, () => {
  it.each(F32_FIXTURES)('%s: every position within 1e-4 relative', async (name) => {
    const path = await makeTestModel(STANDARD_SPECS[name]!);
    const reference = loadReferenceLlama(readFileSync(path));
    const { loadModel } = await importSdk();
    const model = await loadModel(path, { kvType: 'f32' });
    try {
      // 40 positions: more than one prefill batch's worth of tokens in several engines, and varied content.
      const ids = [...model.tokenize('The quick brown fox jumps over the lazy dog. 12 + 30 = 42;'), ...reference.greedy([1, 50, 60], 20)];
      const ours = await model.evaluate(ids);
      const expected = reference.forward(ids);
      expect(ours).toHaveLength(ids.length);
      ours.forEach((row, pos) => {
        expect(relativeError(row, expected[pos]!), `position ${pos}`).toBeLessThan(1e-4);
        expect(argmax(row), `position ${pos}`).toBe(argmax(expected[pos]!));
      });
    } finally {
      model.dispose();
    }
  });
});
