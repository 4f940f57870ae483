/**
 * Backend choice in Node, with a stand-in WebGPU adapter: 'auto' keeps to WASM for what the WebGPU kernels do not run
 * (architecture, RoPE options, tensor kinds, types) and says why; 'webgpu' refuses it with a typed error.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openBackend, wasmMaxBatch, type ModelNeeds } from './backend.js';
import type { ModelConfig } from './contract/config.js';
import { GGMLType } from './contract/ggml-types.js';
import { RecycleGPTError } from './errors.js';

const LLAMA: Omit<ModelConfig, 'maxBatch'> = {
  architecture: 'llama', vocabSize: 64, dim: 32, layers: 1, heads: 2, kvHeads: 1, ffnDim: 32, contextLength: 16, headDim: 16, ropeDim: 16,
  ropeFreqBase: 10000, rmsEps: 1e-5, kvType: 'f16', sequences: 1,
  ropeScaling: { type: 'linear', factor: 1, attnFactor: 1, originalContext: 16 }, attentionScaleDim: 16, finalLogitSoftcap: 0,
};
const PLAIN: ModelNeeds = { weights: { bytes: 1 << 20, largest: { name: 'token_embd.weight', bytes: 1 << 19 } }, tensors: [{ kind: 0, type: GGMLType.Q8_0 }, { kind: 1, type: GGMLType.F32 }] };

const original = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
beforeEach(() => {
  // An adapter whose device never comes: a plain llama model would get as far as asking for one.
  const adapter = { limits: { maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 }, requestDevice: () => Promise.reject(new Error('no device here')) };
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: { requestAdapter: async () => adapter } }, configurable: true });
});
afterEach(() => {
  if (original) Object.defineProperty(globalThis, 'navigator', original);
  else delete (globalThis as { navigator?: unknown }).navigator;
});

describe("backend 'auto' with a WebGPU adapter", () => {
  it.each([
    ['another architecture', { ...LLAMA, architecture: 'qwen3' }, PLAIN, /architecture 'qwen3'/],
    ['RoPE scaling', { ...LLAMA, ropeScaling: { ...LLAMA.ropeScaling, type: 'yarn', factor: 4 } }, PLAIN, /RoPE scaling \(yarn, factor 4\)/],
    ['Llama 3 frequency factors', LLAMA, { ...PLAIN, tensors: [...PLAIN.tensors, { kind: 12, type: GGMLType.F32 }] }, /rope_freqs.weight in F32: it has no tensor kind 12/],
    ['a K-quant', LLAMA, { ...PLAIN, tensors: [{ kind: 9, type: GGMLType.Q4_K }] }, /blk.N.ffn_gate.weight in Q4_K: it reads F32, F16, Q4_0 and Q8_0 weights only/],
    ['norms in F16', LLAMA, { ...PLAIN, tensors: [{ kind: 3, type: GGMLType.F16 }] }, /attn_norm.weight in F16: it reads norm weights in F32 only/],
  ] as const)('picks WASM for %s and says why', async (_, config, needs, reason) => {
    const opened = await openBackend('auto', config as Omit<ModelConfig, 'maxBatch'>, undefined, needs);
    expect(opened.name).toBe('wasm');
    expect(opened.reason).toMatch(/^the WebGPU backend cannot run this model: /);
    expect(opened.reason).toMatch(reason);
    opened.backend.free();
    const refused = await openBackend('webgpu', config as Omit<ModelConfig, 'maxBatch'>, undefined, needs).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RecycleGPTError);
    expect((refused as RecycleGPTError).code).toBe('GGUF_UNSUPPORTED');
  });

  it('tries WebGPU for a plain llama model (and falls back when it gives no device)', async () => {
    const opened = await openBackend('auto', LLAMA, undefined, PLAIN);
    expect([opened.name, opened.reason]).toEqual(['wasm', expect.stringMatching(/WebGPU failed to start|adapter gave no device/)]);
    opened.backend.free();
  });

  it('tries WebGPU, with one KV sequence, when several are asked for; WASM keeps them all', async () => {
    const opened = await openBackend('auto', { ...LLAMA, sequences: 3 }, undefined, PLAIN);
    expect([opened.name, opened.reason]).toEqual(['wasm', expect.stringMatching(/WebGPU failed to start|adapter gave no device/)]);
    expect(opened.backend.sequences).toBe(3);
    opened.backend.free();
  });
});

describe('WASM batch size', () => {
  it('keeps the logits of a full pass under 4 MiB, between 8 and 32 tokens', () => {
    // The demo's 4096, SmolLM2's 49152, Llama 3's 128256, Qwen's 151936, Gemma 3's 262144.
    expect([4096, 32000, 49152, 128256, 151936, 262144].map(wasmMaxBatch)).toEqual([32, 32, 16, 8, 8, 8]);
  });

  it('is the batch the opened WASM backend runs', async () => {
    const opened = await openBackend('wasm', { ...LLAMA, vocabSize: 49152 }, undefined, PLAIN);
    expect(opened.backend.config.maxBatch).toBe(16);
    opened.backend.free();
  });
});
