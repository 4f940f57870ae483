import { describe, expect, it } from 'vitest';
import { buildModelGGUF, type ModelSpec } from '../../test/fixtures/models.js';
import { GGMLType } from './contract/ggml-types.js';
import type { GGUFHeader, GGUFTensorInfo } from './gguf/types.js';
import { parseGGUF } from './gguf/parse.js';
import { modelShape, recycleTensorSlot, tensorSlot } from './model-file.js';
import { RecycleGPTError } from './errors.js';

const SMALL = { dim: 64, layers: 2, heads: 4, kvHeads: 2, ffn: 96, vocab: 'gpt2', type: 'F32', ctx: 64, seed: 1 } as const;

function header(spec: Partial<ModelSpec> = {}): GGUFHeader {
  return parseGGUF(buildModelGGUF({ ...SMALL, ...spec }));
}

/** The header with metadata changed (undefined deletes a key) and tensors mapped. */
function edited(h: GGUFHeader, meta: Record<string, unknown>, tensors: (t: GGUFTensorInfo[]) => GGUFTensorInfo[] = (t) => t): GGUFHeader {
  const metadata = { ...h.metadata, ...meta } as GGUFHeader['metadata'];
  for (const [key, value] of Object.entries(meta)) if (value === undefined) delete metadata[key];
  return { ...h, metadata, tensors: tensors(h.tensors) };
}

function refusal(h: GGUFHeader): RecycleGPTError {
  try {
    modelShape(h);
  } catch (error) {
    expect(error).toBeInstanceOf(RecycleGPTError);
    return error as RecycleGPTError;
  }
  throw new Error('the header was accepted');
}

describe('modelShape reads each architecture as its converted files say', () => {
  it('llama: rope_freqs allowed, scaling absent means linear ×1, head_dim from key_length', () => {
    const shape = modelShape(header({ ropeFreqs: true, headDim: 32, heads: 4 }));
    expect(shape).toMatchObject({ architecture: 'llama', headDim: 32, ropeDim: 32, attentionScaleDim: 32, finalLogitSoftcap: 0, slidingWindow: undefined });
    expect(shape.ropeScaling).toEqual({ type: 'linear', factor: 1, attnFactor: 1, originalContext: 64 });
  });

  it('llama: YaRN with its original context; linear with its factor', () => {
    expect(modelShape(header({ ropeScaling: { type: 'yarn', factor: 4, originalContext: 16 } })).ropeScaling).toEqual({ type: 'yarn', factor: 4, attnFactor: 1, originalContext: 16 });
    expect(modelShape(header({ ropeScaling: { type: 'linear', factor: 8 } })).ropeScaling.factor).toBe(8);
  });

  it('qwen2, qwen3: biases and per-head norms are theirs; qwen3 head_dim ≠ dim / heads', () => {
    expect(modelShape(header({ arch: 'qwen2' })).architecture).toBe('qwen2');
    const qwen3 = modelShape(header({ arch: 'qwen3', headDim: 32 }));
    expect([qwen3.headDim, qwen3.dim / qwen3.heads]).toEqual([32, 16]);
  });

  it('gemma3: the sliding window with llama.cpp\'s default pattern and RoPE base, the 27B attention scale rule', () => {
    const gemma = header({ arch: 'gemma3', layers: 2, tiedOutput: true, slidingWindow: { size: 8, ropeFreqBase: 10000 } });
    expect(modelShape(gemma).slidingWindow).toEqual({ size: 8, pattern: 6, ropeFreqBase: 10000 });
    expect(modelShape(edited(gemma, { 'gemma3.rope.freq_base_swa': undefined })).slidingWindow?.ropeFreqBase).toBe(10000);
    expect(modelShape(edited(gemma, { 'gemma3.attention.sliding_window': undefined })).slidingWindow).toBeUndefined();
    // A flag per layer is taken when periodic (here one global layer in 2), refused otherwise.
    expect(modelShape(edited(gemma, { 'gemma3.attention.sliding_window_pattern': [true, false] })).slidingWindow?.pattern).toBe(2);
    expect(refusal(edited(gemma, { 'gemma3.attention.sliding_window_pattern': [false, true] })).message).toMatch(/does not repeat with a period/);
    expect(modelShape(edited(gemma, { 'gemma3.final_logit_softcapping': 30 })).finalLogitSoftcap).toBe(30);
    // llama.cpp scales Gemma 3 27B's (62 layers) attention by 1/√(n_embd / n_head), every other size by 1/√head_dim.
    const deep = header({ arch: 'gemma3', layers: 62, dim: 64, heads: 2, kvHeads: 1, headDim: 16, ffn: 32, tiedOutput: true });
    expect([modelShape(deep).attentionScaleDim, modelShape(gemma).attentionScaleDim]).toEqual([32, 16]);
  });
});

describe('modelShape refuses what the engine does not run, by name', () => {
  it('another architecture, listing the supported ones', () => {
    const error = refusal(edited(header(), { 'general.architecture': 'phi3' }));
    expect(error.code).toBe('GGUF_UNSUPPORTED');
    expect(error.message).toMatch(/architecture 'phi3' is not supported; this engine runs llama \(.*\), qwen2 \(.*\), qwen3 \(.*\), gemma3 \(/);
  });

  it('an option it does not implement, a mixture of experts, a RoPE scaling it lacks, a YaRN key llama.cpp ignores', () => {
    expect(refusal(edited(header(), { 'llama.attention.causal': false })).message).toMatch(/'llama.attention.causal' asks for an option this engine does not implement/);
    expect(refusal(edited(header(), { 'llama.expert_count': 8 })).message).toMatch(/mixture-of-experts/);
    expect(modelShape(edited(header(), { 'llama.expert_count': 0 })).architecture).toBe('llama');
    expect(refusal(edited(header(), { 'llama.rope.scaling.type': 'longrope' })).message).toMatch(/RoPE scaling 'longrope'/);
    expect(refusal(edited(header(), { 'llama.rope.scaling.yarn_beta_fast': 16 })).message).toMatch(/llama.cpp does not read it for llama and uses 32/);
    // Gemma's window is not a llama option.
    expect(refusal(edited(header(), { 'llama.attention.sliding_window': 4096 })).code).toBe('GGUF_UNSUPPORTED');
  });

  it('a tensor of another architecture, a missing one, a wrong shape', () => {
    const qwen3 = header({ arch: 'qwen3' });
    expect(refusal(edited(header(), {}, (t) => [...t, { ...t.find((x) => x.name === 'blk.0.attn_norm.weight')!, name: 'blk.0.attn_q_norm.weight' }])).message)
      .toMatch(/'blk.0.attn_q_norm.weight' is not part of the llama architecture/);
    expect(refusal(edited(qwen3, {}, (t) => t.filter((x) => x.name !== 'blk.1.attn_k_norm.weight'))).message).toMatch(/'blk.1.attn_k_norm.weight' is missing: a qwen3 model needs it/);
    const wrong = refusal(edited(header(), {}, (t) => t.map((x) => (x.name === 'blk.0.attn_k.weight' ? { ...x, dims: [64, 64] } : x))));
    expect([wrong.code, wrong.message]).toEqual(['MODEL_INVALID', expect.stringMatching(/'blk.0.attn_k.weight' is 64 × 64, but the model's hyperparameters make it 64 × 32/)]);
  });

  it('a type it does not run, naming it and listing the ones it does; RoPE factors other than F32', () => {
    const iq = edited(header(), {}, (t) => t.map((x) => (x.name === 'blk.0.ffn_up.weight' ? { ...x, type: 16 } : x)));
    expect(refusal(iq).message).toMatch(/'blk.0.ffn_up.weight' has type IQ2_XXS, which this engine does not run; it runs F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, BF16/);
    const freqs = edited(header({ ropeFreqs: true }), {}, (t) => t.map((x) => (x.name === 'rope_freqs.weight' ? { ...x, type: GGMLType.F16 } : x)));
    expect(refusal(freqs).message).toMatch(/'rope_freqs.weight' has type F16; it must be F32/);
  });

  it('accepts norms and biases stored as F16 (the engine widens them)', () => {
    const f16Norms = edited(header({ arch: 'qwen2' }), {}, (t) => t.map((x) => (x.dims.length === 1 ? { ...x, type: GGMLType.F16 } : x)));
    expect(modelShape(f16Norms).architecture).toBe('qwen2');
  });
});

describe('tensor slots', () => {
  it('maps every tensor of each architecture to its kind and layer', () => {
    const h = header({ arch: 'gemma3', layers: 2, tiedOutput: true, slidingWindow: { size: 8, ropeFreqBase: 10000 } });
    const shape = modelShape(h);
    const slot = (name: string) => tensorSlot(h.tensors.find((t) => t.name === name)!, shape);
    expect(slot('blk.1.post_ffw_norm.weight')).toEqual({ kind: 19, layer: 1, rows: 1, cols: 64 });
    expect(slot('blk.0.attn_q.weight')).toEqual({ kind: 4, layer: 0, rows: 64, cols: 64 });
  });

  it('maps a recycle head\'s tensors and refuses the rest', () => {
    const tensor = (name: string): GGUFTensorInfo => ({ name, dims: [8], type: 0, offset: 0, byteSize: 32 });
    expect(recycleTensorSlot(tensor('recycle.proj.weight'), 1).kind).toBe(0);
    expect(recycleTensorSlot(tensor('recycle.blk.0.ffn_down.weight'), 1).kind).toBe(11);
    expect(() => recycleTensorSlot(tensor('recycle.blk.0.attn_q_norm.weight'), 1)).toThrow(/not part of a recycle head/);
    expect(() => recycleTensorSlot(tensor('recycle.blk.1.ffn_down.weight'), 1)).toThrow(/names layer 1, but the head has 1/);
  });
});
