/** Seeded PRNG (mulberry32) so the browser and Node build the same test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** count values uniform in [-scale, scale). */
export function uniform(random: () => number, count: number, scale = 1): Float32Array {
  return Float32Array.from({ length: count }, () => (random() * 2 - 1) * scale);
}
