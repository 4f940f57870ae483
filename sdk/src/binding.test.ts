import { describe, expect, it } from 'vitest';
import { kvWord } from './binding.js';

describe('kvWord (config word 11)', () => {
  // 2 (K and V) × 8 layers × 512 tokens × 8 kv heads × 64 × 4 bytes = exactly 16 MiB.
  const thirtyM = { kvType: 'f16' as const, layers: 8, contextLength: 512, kvHeads: 8, headDim: 64 };

  it('keeps an f16 cache of at most 16 MiB widened (2), stores a larger one at 2 bytes a value (1)', () => {
    expect(kvWord(thirtyM)).toBe(2);
    expect(kvWord({ ...thirtyM, contextLength: 513 })).toBe(1);
    // The demo model's 0.75 MiB cache, and a one-layer head beside a base too large to widen.
    expect(kvWord({ kvType: 'f16', layers: 6, contextLength: 256, kvHeads: 4, headDim: 32 })).toBe(2);
    expect(kvWord({ ...thirtyM, layers: 1, contextLength: 2048 })).toBe(2);
  });

  it('gives 0 for an f32 cache', () => {
    expect(kvWord({ ...thirtyM, kvType: 'f32' })).toBe(0);
  });
});
