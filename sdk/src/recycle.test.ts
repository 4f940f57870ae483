import { describe, expect, it } from 'vitest';
import { fnv1a64 } from './recycle.js';

describe('fnv1a64', () => {
  it('gives the reference FNV-1a 64-bit values', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(fnv1a64(enc(''))).toBe('cbf29ce484222325');
    expect(fnv1a64(enc('a'))).toBe('af63dc4c8601ec8c');
    expect(fnv1a64(enc('foobar'))).toBe('85944171f73967e8');
  });

  it('matches a BigInt implementation on random bytes', () => {
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 73 + 11) & 255);
    let h = 0xcbf29ce484222325n;
    for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
    expect(fnv1a64(bytes)).toBe(h.toString(16).padStart(16, '0'));
  });
});
