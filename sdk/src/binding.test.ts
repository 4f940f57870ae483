import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildModelGGUF } from '../../test/fixtures/models.js';
import { loadModel } from './model.js';
import { WasmLlama, instantiateEngine, kvWord, type EngineExports } from './binding.js';
import type { ModelConfig } from './contract/config.js';
import { RecycleGPTError } from './errors.js';

describe('kvWord (config word 11)', () => {
  // 2 (K and V) × 8 layers × 512 tokens × 8 kv heads × 64 × 4 bytes = exactly 16 MiB.
  const thirtyM = { kvType: 'f16' as const, layers: 8, contextLength: 512, kvHeads: 8, headDim: 64, sequences: 1 };

  it('keeps an f16 cache of at most 16 MiB widened (2), stores a larger one at 2 bytes a value (1)', () => {
    expect(kvWord(thirtyM)).toBe(2);
    expect(kvWord({ ...thirtyM, contextLength: 513 })).toBe(1);
    // The demo model's 0.75 MiB cache, and a one-layer head beside a base too large to widen.
    expect(kvWord({ kvType: 'f16', layers: 6, contextLength: 256, kvHeads: 4, headDim: 32, sequences: 1 })).toBe(2);
    expect(kvWord({ ...thirtyM, layers: 1, contextLength: 2048 })).toBe(2);
    // Every KV sequence is a cache of its own: two of half the length are as much.
    expect(kvWord({ ...thirtyM, contextLength: 256, sequences: 2 })).toBe(2);
    expect(kvWord({ ...thirtyM, contextLength: 257, sequences: 2 })).toBe(1);
  });

  it('gives 0 for an f32 cache', () => {
    expect(kvWord({ ...thirtyM, kvType: 'f32' })).toBe(0);
  });
});

async function engine(): Promise<EngineExports> {
  return instantiateEngine(await WebAssembly.compile(readFileSync(new URL('../wasm/recyclegpt.wasm', import.meta.url))));
}

const TINY: ModelConfig = {
  architecture: 'llama', vocabSize: 16, dim: 8, layers: 1, heads: 2, kvHeads: 1, ffnDim: 8, contextLength: 8, headDim: 4, ropeDim: 4,
  ropeFreqBase: 10000, rmsEps: 1e-5, kvType: 'f32', maxBatch: 2, sequences: 2,
  ropeScaling: { type: 'none', factor: 1, attnFactor: 1, originalContext: 8 }, attentionScaleDim: 4, finalLogitSoftcap: 0,
};

/** A TINY model with every weight 1/8 (norms 1): the logits depend on the cache only through attention. */
function tinyModel(e: EngineExports): WasmLlama {
  const model = new WasmLlama(e, TINY);
  const matrices: [number, number, number][] = [[0, 16, 8], [4, 8, 8], [5, 4, 8], [6, 4, 8], [7, 8, 8], [9, 8, 8], [10, 8, 8], [11, 8, 8]];
  for (const [kind, rows, cols] of matrices) {
    const values = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37 + kind) / 8);
    model.reserve(kind, 0, 0, rows, cols, values.byteLength, `kind ${kind}`).set(new Uint8Array(values.buffer));
  }
  for (const kind of [1, 3, 8]) model.reserve(kind, 0, 0, 1, 8, 32, `kind ${kind}`).set(new Uint8Array(new Float32Array(8).fill(1).buffer));
  model.ready();
  return model;
}

describe('WasmLlama KV sequences', () => {
  it('keeps conversations apart: interleaved on two sequences, each gives what it gives alone', async () => {
    const model = tinyModel(await engine());
    expect(model.sequences).toBe(2);
    const run = (tokens: number[]) => tokens.map((t, pos) => (model.forward([t], pos, 0), Array.from(model.logits())));
    const [a, b] = [[1, 5, 9, 2, 7], [3, 3, 14, 0, 11]];
    const alone = run(a);
    const interleaved: number[][] = [];
    a.forEach((t, pos) => {
      model.selectSequence(1);
      model.forward([b[pos]!], pos, 0);
      model.selectSequence(0);
      model.forward([t], pos, 0);
      interleaved.push(Array.from(model.logits()));
    });
    expect(interleaved).toEqual(alone);
    expect(() => model.selectSequence(2)).toThrow(/sequence must be an integer from 0 to 1/);
    model.free();
  });
});

describe('WasmLlama memory check', () => {
  it('refuses up front, with the sizes, a model whose weights and KV cache cannot fit 4 GiB', async () => {
    const e = await engine();
    // Llama 3.1 8B's shape at its full 128k context: a 16 GiB f16 KV cache beside 4.6 GiB of Q4_K weights.
    const eightB: ModelConfig = { ...TINY, vocabSize: 128256, dim: 4096, layers: 32, heads: 32, kvHeads: 8, ffnDim: 14336, contextLength: 131072, headDim: 128, ropeDim: 128, kvType: 'f16', sequences: 1, attentionScaleDim: 128 };
    const weights = { bytes: 4.58 * 2 ** 30, largest: { name: 'token_embd.weight', bytes: 0.3 * 2 ** 30 } };
    const error = (() => {
      try {
        return new WasmLlama(e, eightB, weights);
      } catch (err) {
        return err;
      }
    })();
    expect(error).toBeInstanceOf(RecycleGPTError);
    expect((error as RecycleGPTError).code).toBe('OUT_OF_MEMORY');
    expect((error as RecycleGPTError).message).toMatch(/weights 4689\.9 MiB \+ KV cache 16384\.0 MiB for 131072 tokens × 1 sequence\(s\) \+ scratch [\d.]+ MiB/);
    // One tensor too large for one wasm32 allocation is named.
    const huge = { bytes: 3 * 2 ** 30, largest: { name: 'output.weight', bytes: 2.1 * 2 ** 30 } };
    expect(() => new WasmLlama(e, { ...eightB, contextLength: 2048 }, huge)).toThrow(/tensor 'output.weight' takes 2150\.4 MiB/);
    // The engine keeps KV caches and scratch below 2 GiB, whatever the weights leave free.
    expect(() => new WasmLlama(e, { ...eightB, contextLength: 16384 }, { ...weights, bytes: 2 ** 29 })).toThrow(/KV cache \(2048\.0 MiB for 16384 tokens × 1 sequence\(s\)\) and scratch .* exceed the 2 GiB/);
    // The 8B weights alone are too much even at a short context; 3B's Q4_K_M (1.9 GiB) fits.
    expect(() => new WasmLlama(e, { ...eightB, contextLength: 2048 }, weights)).toThrow(/needs 494\d\.\d MiB \(weights 4689\.9 MiB \+ KV cache 256\.0 MiB/);
    new WasmLlama(e, { ...eightB, contextLength: 2048 }, { ...weights, bytes: 1.9 * 2 ** 30 }).free();
  });

  it('is what loadModel answers for a context the memory cannot hold, before any tensor is written', async () => {
    const file = buildModelGGUF({ dim: 64, layers: 2, heads: 4, kvHeads: 4, ffn: 96, vocab: 'gpt2', type: 'F32', ctx: 1 << 24, seed: 3 });
    let tensors = 0;
    const error = await loadModel(file, { contextLength: 1 << 24, onProgress: (p) => void (tensors = p.loaded) }).catch((e: unknown) => e);
    expect((error as RecycleGPTError).code).toBe('OUT_OF_MEMORY');
    expect((error as RecycleGPTError).message).toMatch(/KV cache 8192\.0 MiB for 16777216 tokens/);
    expect(tensors).toBe(0);
  });
});
