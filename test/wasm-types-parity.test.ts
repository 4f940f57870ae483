/**
 * Every weight type the engine reads, in the mixes llama.cpp's own quantizer makes (llama_model_quantize on a
 * random F32 model): each file loads through the SDK and its logits agree with llama.cpp's. Two shapes:
 * dim 256 (every matrix K-quantizable) and dim 320 (rows of 320 are not a multiple of 256, so llama.cpp
 * falls back to Q4_0 / Q5_0 / Q5_1 / Q8_0 there, as in SmolLM2's 576: real files mix types).
 *
 * The bound: max |Δlogit| over teacher-forced positions, against llama.cpp's own spread between its
 * flash-attention on and off paths on the same file (the engine mirrors the off path, but llama.cpp's x86
 * kernels sum in another order and round activations half to even where ggml's reference rounds away).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestModel, type ModelSpec } from './fixtures/models.js';
import { llamaQuantize, type LlamaFileType } from './oracle/llama-quantize.js';
import { openLlamaCpp, type LlamaCppModel } from './oracle/llamacpp.js';
import { maxAbsDiff } from './reference/compare.js';
import { importSdk, SDK_MISSING_REASON, SDK_READY } from './sdk.js';

type Model = Awaited<ReturnType<Awaited<ReturnType<typeof importSdk>>['loadModel']>>;

const K_SHAPE: ModelSpec = { dim: 256, layers: 2, heads: 4, kvHeads: 2, ffn: 512, vocab: 'llama', type: 'F32', ctx: 256, seed: 11 };
const MIXED_SHAPE: ModelSpec = { dim: 320, layers: 2, heads: 5, kvHeads: 1, ffn: 768, vocab: 'gpt2', type: 'F32', ctx: 256, seed: 12 };
const CASES: [LlamaFileType, ModelSpec][] = [
  ...(['Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K_S', 'Q3_K_M', 'Q3_K_L', 'Q4_K_S', 'Q4_K_M', 'Q5_K_S', 'Q5_K_M', 'Q6_K', 'BF16'] as const).map(
    (t): [LlamaFileType, ModelSpec] => [t, K_SHAPE],
  ),
  ...(['Q2_K', 'Q3_K_M', 'Q4_K_M', 'Q5_K_M', 'Q6_K'] as const).map((t): [LlamaFileType, ModelSpec] => [t, MIXED_SHAPE]),
];
const PROMPT = 'The quick brown fox jumps over the lazy dog while the lighthouse keeper';
const STEPS = 24;

describe.skipIf(!SDK_READY)(`llama.cpp's quantization mixes${SDK_READY ? '' : ` (skipped: ${SDK_MISSING_REASON})`}`, () => {
  describe.each(CASES.map(([fileType, spec]) => ({ fileType, spec, dim: spec.dim })))('$fileType, dim $dim', ({ fileType, spec }) => {
    let model: Model;
    let oracle: LlamaCppModel;
    let path: string;

    beforeAll(async () => {
      path = llamaQuantize(await makeTestModel(spec), fileType);
      model = await (await importSdk()).loadModel(path);
      oracle = await openLlamaCpp(path);
    });
    afterAll(async () => {
      model?.dispose();
      await oracle?.dispose();
    });

    it("loads and gives llama.cpp's logits within its own flash-attention spread", async () => {
      const prompt = oracle.tokenize(PROMPT);
      const ids = [...prompt, ...(await oracle.greedy(prompt, STEPS))];
      const ours = await model.evaluate(ids);
      const theirs = await oracle.logits(ids);
      const flash = await openLlamaCpp(path, { flashAttention: true });
      const flashed = await flash.logits(ids);
      await flash.dispose();
      const delta = Math.max(...ours.map((row, i) => maxAbsDiff(row, theirs[i]!)));
      const spread = Math.max(...flashed.map((row, i) => maxAbsDiff(row, theirs[i]!)));
      const types = Object.entries(model.info.tensorTypes).map(([t, n]) => `${t}×${n}`).join(' ');
      console.log(`${fileType} dim ${spec.dim} (${types}): max |Δlogit| ${delta.toExponential(2)}, llama.cpp flash on/off ${spread.toExponential(2)}`);
      expect(delta).toBeLessThanOrEqual(Math.max(3 * spread, 0.05));
    });
  });
});
