import { describe, expect, it } from 'vitest';
import { typeName } from '../test/fixtures/quantize.js';
import { baseTensors, headTensors, type BenchModel } from './models.js';

/** ggml type name → tensor count (no weights are generated: a tensor's rows are made only when written). */
function typeCounts(tensors: Array<{ type: number }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const t of tensors) counts[typeName(t.type)] = (counts[typeName(t.type)] ?? 0) + 1;
  return counts;
}

describe('bench models: tensor types per file type', () => {
  it('pure Q8_0 / Q4_0 put every matrix in that type and keep norms F32', () => {
    for (const fileType of ['Q8_0', 'Q4_0'] as const) {
      const model: BenchModel = { shape: 'smollm2-135m', fileType };
      // 30 layers × 7 matrices + the tied embedding; 2 norms a layer + the output norm.
      expect(typeCounts(baseTensors(model))).toEqual({ [fileType]: 211, F32: 61 });
      expect(typeCounts(headTensors(model))).toEqual({ [fileType]: 8, F32: 3 });
    }
  });

  it("Q4_K_M at the SmolLM2 shape takes llama.cpp's fallback for 576-wide rows", () => {
    const tensors = baseTensors({ shape: 'smollm2-135m', fileType: 'Q4_K_M' });
    expect(typeCounts(tensors)).toEqual({ Q5_0: 166, Q8_0: 15, Q4_K: 16, Q6_K: 14, F32: 61 });
    const typeOf = (name: string) => typeName(tensors.find((t) => t.name === name)!.type);
    expect(typeOf('token_embd.weight')).toBe('Q8_0'); // the tied output: Q6_K, whose blocks do not fit 576
    expect(typeOf('blk.0.ffn_down.weight')).toBe('Q6_K'); // 1536 wide, first eighth of the layers
    expect(typeOf('blk.4.ffn_down.weight')).toBe('Q4_K');
    expect(typeOf('blk.0.attn_v.weight')).toBe('Q8_0'); // Q6_K's fallback
    expect(typeOf('blk.4.attn_q.weight')).toBe('Q5_0'); // Q4_K's fallback
  });

  it('Q4_K_M at the Qwen3 shape is Q4_K with Q6_K where llama.cpp gives more bits', () => {
    const tensors = baseTensors({ shape: 'qwen3-0.6b', fileType: 'Q4_K_M' });
    const typeOf = (name: string) => typeName(tensors.find((t) => t.name === name)!.type);
    expect(typeOf('token_embd.weight')).toBe('Q6_K');
    expect(typeOf('blk.0.attn_v.weight')).toBe('Q6_K');
    expect(typeOf('blk.4.attn_v.weight')).toBe('Q4_K');
    expect(typeOf('blk.5.ffn_down.weight')).toBe('Q6_K'); // use_more_bits: (5 − ⌊28/8⌋) % 3 == 2, every third layer after the first eighth
    expect(typeOf('blk.27.attn_output.weight')).toBe('Q4_K');
  });

  it("types the head's one layer by llama.cpp's rules under its recycle. names", () => {
    const head = headTensors({ shape: 'qwen3-0.6b', fileType: 'Q4_K_M' });
    const typeOf = (name: string) => typeName(head.find((t) => t.name === name)!.type);
    expect(typeOf('recycle.blk.0.attn_v.weight')).toBe('Q6_K'); // layer 0 of 1 gets more bits
    expect(typeOf('recycle.blk.0.attn_q.weight')).toBe('Q4_K');
    expect(typeOf('recycle.proj.weight')).toBe('Q4_K'); // 2048 wide
    expect(typeOf('recycle.output_norm.weight')).toBe('F32');
  });
});
