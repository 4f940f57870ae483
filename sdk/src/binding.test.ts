import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { buildModelGGUF, makeTestModel, STANDARD_SPECS } from '../../test/fixtures/models.js';
import { loadModel } from './model.js';
import { WasmLlama, instantiateEngine, kvWord, type EngineExports } from './binding.js';
import type { ModelConfig } from './contract/config.js';
import { KERNEL_SETS } from './contract/modes.js';
import { RecycleGPTError } from './errors.js';
import type { LoadOptions } from './types.js';

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

const file = (name: string) => readFileSync(new URL(`../wasm/${name}`, import.meta.url));
/** Whether this Node compiles the relaxed module and computes its instruction exactly: Node 20 does not compile it. */
const hostRunsRelaxed = await WebAssembly.compile(file('recyclegpt-relaxed.wasm')).then(
  async (module) => ((await WebAssembly.instantiate(module, {})).exports as unknown as EngineExports).rg_relaxed_ok() === 1,
  () => false,
);

describe('choosing the engine module (LoadOptions.wasm, kernels)', () => {
  // Q4_0 weights: what the relaxed module's kernels run.
  const q4 = () => makeTestModel(STANDARD_SPECS.q4_gpt2);
  const options = { contextLength: 32 };
  const caught = (promise: Promise<unknown>) => promise.then(() => undefined, (e: unknown) => e as RecycleGPTError);

  it('ships two modules that say what they run (rg_kernel_set), one of them relaxed', async () => {
    const sets = await Promise.all(['recyclegpt.wasm', 'recyclegpt-relaxed.wasm'].map(async (name) => {
      const bytes = file(name);
      // The relaxed module compiles only where relaxed SIMD is on: read its kernel set without running it, from the flag's child below.
      return WebAssembly.validate(bytes) ? KERNEL_SETS[(await instantiateEngine(await WebAssembly.compile(bytes))).rg_kernel_set()] : 'not valid here';
    }));
    expect(sets[0]).toBe('simd128');
    expect(sets[1]).toBe(hostRunsRelaxed ? 'relaxed' : 'not valid here');
  });

  it('by default runs the relaxed module where this host runs it exactly, else the SIMD128 one, and says why', async () => {
    const model = await loadModel(await q4(), options);
    if (hostRunsRelaxed) {
      expect([model.info.kernels, model.info.kernelsReason]).toEqual(['relaxed', 'relaxed SIMD runs exactly here']);
    } else {
      // Node 20: relaxed SIMD does not compile without a flag.
      expect(model.info.kernels).toBe('simd128');
      expect(model.info.kernelsReason).toMatch(/^recyclegpt-relaxed\.wasm cannot be used here \(.*relaxed-simd/);
    }
    model.dispose();
  });

  it.skipIf(hostRunsRelaxed)("refuses kernels 'relaxed' on a host without relaxed SIMD with a typed error that says why", async () => {
    const error = await caught(loadModel(await q4(), { ...options, kernels: 'relaxed' }));
    expect(error).toBeInstanceOf(RecycleGPTError);
    expect(error!.code).toBe('ENGINE');
    expect(error!.message).toMatch(/^kernels 'relaxed' cannot run here: recyclegpt-relaxed\.wasm cannot be used here \(.*\); use kernels 'auto', which runs recyclegpt\.wasm where relaxed SIMD does not$/);
  });

  it('takes both modules (compiled or bytes), either alone, and checks each is what its name says', async () => {
    const simd128 = await WebAssembly.compile(file('recyclegpt.wasm'));
    const relaxed = file('recyclegpt-relaxed.wasm');
    const run = async (load: LoadOptions) => {
      const model = await loadModel(await q4(), { ...options, ...load });
      const { tokens } = await model.complete([1, 2, 3], { maxTokens: 4, temperature: 0 });
      model.dispose();
      return { kernels: model.info.kernels, reason: model.info.kernelsReason, tokens };
    };
    const both = await run({ wasm: { relaxed, simd128 } });
    const fallback = hostRunsRelaxed ? 'relaxed' : 'simd128';
    expect(both.kernels).toBe(fallback);
    expect(await run({ wasm: { simd128 } })).toEqual({ kernels: 'simd128', reason: 'no wasm.relaxed module was given', tokens: both.tokens });
    expect(await run({ wasm: simd128 })).toEqual({ kernels: 'simd128', reason: 'the only module given', tokens: both.tokens });
    expect(await run({ wasm: { relaxed, simd128 }, kernels: 'simd128' })).toEqual({ kernels: 'simd128', reason: 'asked for', tokens: both.tokens });

    const swapped = await caught(loadModel(await q4(), { ...options, wasm: { relaxed: simd128 } }));
    expect([swapped?.code, swapped?.message]).toEqual(['INVALID_ARGUMENT', 'the module given as wasm.relaxed runs simd128 kernels; pass recyclegpt-relaxed.wasm there']);
    const one = await caught(loadModel(await q4(), { ...options, wasm: simd128, kernels: 'relaxed' }));
    expect([one?.code, one?.message]).toEqual(['ENGINE', "kernels 'relaxed' was asked for, but the module given as wasm runs simd128 kernels; pass recyclegpt-relaxed.wasm (or both modules, as wasm: { relaxed, simd128 })"]);
    const none = await caught(loadModel(await q4(), { ...options, wasm: {} }));
    expect(none?.code).toBe('INVALID_ARGUMENT');
    const bad = await caught(loadModel(await q4(), { ...options, kernels: 'fast' as 'auto' }));
    expect([bad?.code, bad?.message]).toEqual(['INVALID_ARGUMENT', "kernels must be 'auto', 'relaxed', 'simd128', got fast"]);
  });

  it('compiles each shipped module at most once per process', async () => {
    (await loadModel(await q4(), options)).dispose();
    const compile = vi.spyOn(WebAssembly, 'compile');
    try {
      for (let i = 0; i < 3; i++) (await loadModel(await q4(), options)).dispose();
      // Neither again: the relaxed module's compile error on Node 20 is kept as well as the compiled SIMD128 module.
      expect(compile).not.toHaveBeenCalled();
    } finally {
      compile.mockRestore();
    }
  });

  it('falls back under Node 20 --experimental-wasm-relaxed-simd, where the relaxed module compiles but computes some dots wrong', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const script = `
      import { readFileSync } from 'node:fs';
      import './sdk/src/node.ts';
      import { loadModel } from './sdk/src/model.ts';
      const module = await WebAssembly.compile(readFileSync('sdk/wasm/recyclegpt-relaxed.wasm'));
      const { exports } = await WebAssembly.instantiate(module, {});
      const model = await loadModel(process.argv[1], { contextLength: 32 });
      const forced = await loadModel(process.argv[1], { contextLength: 32, kernels: 'relaxed' }).catch((e) => e);
      console.log(JSON.stringify({ relaxedOk: exports.rg_relaxed_ok(), kernelSet: exports.rg_kernel_set(), kernels: model.info.kernels, reason: model.info.kernelsReason, forced: [forced.code, forced.message] }));`;
    const child = spawnSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--import', 'tsx', '--input-type=module', '-e', script, await q4()], { cwd: root, encoding: 'utf8' });
    expect(child.stderr.replace(/.*ExperimentalWarning.*\n|.*--trace-warnings.*\n/g, '')).toBe('');
    expect(JSON.parse(child.stdout)).toEqual({
      relaxedOk: 0,
      kernelSet: 2,
      kernels: 'simd128',
      reason: "this host runs the relaxed-SIMD kernels inexactly (rg_relaxed_ok)",
      forced: ['ENGINE', "kernels 'relaxed' cannot run here: this host runs the relaxed-SIMD kernels inexactly (rg_relaxed_ok); use kernels 'auto', which runs recyclegpt.wasm where relaxed SIMD does not"],
    });
  });
});
