/// <reference types="@cloudflare/vitest-pool-workers/types" />
import { env } from 'cloudflare:workers';
import { loadModel, RecycleGPTError, type KernelChoice, type Model } from 'recyclegpt';
import relaxed from 'recyclegpt/recyclegpt-relaxed.wasm';
import simd128 from 'recyclegpt/recyclegpt.wasm';
import { describe, expect, it } from 'vitest';

/**
 * The engine's two modules inside workerd, which runs relaxed SIMD: given both, the SDK runs the relaxed one, and it
 * computes exactly what the SIMD128 one does, on weights its relaxed kernels run (Q4_0; Q4_K and Q6_K in Q4_K_M).
 */
const models = env as unknown as { TEST_Q4_0_MODEL: ArrayBuffer; TEST_Q4_K_M_MODEL: ArrayBuffer };

const load = (file: ArrayBuffer, kernels: KernelChoice) => loadModel(new Uint8Array(file), { wasm: { relaxed, simd128 }, kernels, contextLength: 128 });

/** A float row's exact bits, so that -0 and 0, or two NaNs, are told apart. */
const bits = (row: Float32Array) => Array.from(new Uint32Array(row.buffer, row.byteOffset, row.length));

/** Logits of every position of a 40-token prompt (batched passes), and up to 24 greedy tokens (one-token passes). */
async function run(model: Model) {
  const prompt = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % model.info.vocabSize);
  const logits = (await model.evaluate(prompt)).map(bits);
  const { tokens } = await model.complete(prompt.slice(0, 8), { maxTokens: 24, temperature: 0 });
  return { logits, tokens };
}

describe.each([
  ['Q4_0', 'TEST_Q4_0_MODEL'],
  ['Q4_K_M', 'TEST_Q4_K_M_MODEL'],
] as const)('the relaxed-SIMD module in workerd on a %s model', (type, binding) => {
  it('is what the SDK picks given both modules, and gives the SIMD128 module\'s greedy tokens and logits, bit for bit', async () => {
    const picked = await load(models[binding], 'auto');
    const plain = await load(models[binding], 'simd128');
    expect(Object.keys(picked.info.tensorTypes)).toContain(type === 'Q4_0' ? 'Q4_0' : 'Q4_K');
    expect([picked.info.kernels, picked.info.kernelsReason]).toEqual(['relaxed', 'relaxed SIMD runs exactly here']);
    expect([plain.info.kernels, plain.info.kernelsReason]).toEqual(['simd128', 'asked for']);
    const [a, b] = [await run(picked), await run(plain)];
    picked.dispose();
    plain.dispose();
    expect(a.tokens.length).toBeGreaterThan(4); // at most 24: a random model may end at its EOS token
    expect(a.tokens).toEqual(b.tokens);
    expect(a.logits).toHaveLength(40);
    a.logits.forEach((row, i) => expect(row, `logits of position ${i}`).toEqual(b.logits[i]));
  });
});

describe('the engine modules in workerd, refused', () => {
  it("answers kernels 'relaxed' with only the SIMD128 module, or the modules swapped, with typed errors that name the file", async () => {
    const file = new Uint8Array(models.TEST_Q4_0_MODEL);
    const refusal = (loading: Promise<Model>) => loading.then(() => undefined, (e: unknown) => e as RecycleGPTError);
    const forced = (await refusal(loadModel(file, { wasm: simd128, kernels: 'relaxed' })))!;
    expect(forced).toBeInstanceOf(RecycleGPTError);
    expect([forced.code, forced.message]).toEqual(['ENGINE', "kernels 'relaxed' was asked for, but the module given as wasm runs simd128 kernels; pass recyclegpt-relaxed.wasm (or both modules, as wasm: { relaxed, simd128 })"]);
    const swapped = (await refusal(loadModel(file, { wasm: { relaxed: simd128, simd128: relaxed } })))!;
    expect([swapped.code, swapped.message]).toEqual(['INVALID_ARGUMENT', 'the module given as wasm.relaxed runs simd128 kernels; pass recyclegpt-relaxed.wasm there']);
  });
});
