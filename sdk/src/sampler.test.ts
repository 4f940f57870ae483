import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.js';
import { Random, Sampler, argmax, draw } from './sampler.js';

const logits = Float32Array.from([1, 3, 2, 0.5, 2.9, -1]);

describe('Random', () => {
  it('repeats its sequence for a seed and differs between seeds', () => {
    const a = new Random(42);
    const b = new Random(42);
    const c = new Random(43);
    const seqA = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(seqA);
    expect(Array.from({ length: 100 }, () => c.next())).not.toEqual(seqA);
    expect(seqA.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('is roughly uniform', () => {
    const r = new Random(7);
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) bins[Math.floor(r.next() * 10)]++;
    for (const n of bins) expect(Math.abs(n - 10_000)).toBeLessThan(500);
  });
});

describe('Sampler', () => {
  it('is greedy at temperature 0', () => {
    const s = new Sampler({ temperature: 0, seed: 1 });
    expect(s.sample(logits, [])).toBe(1);
    expect(s.distribution(logits)).toEqual({ ids: [1], probs: [1] });
  });

  it('keeps the top-k, then the top-p mass, then min-p', () => {
    const topK = new Sampler({ temperature: 1, topK: 3, topP: 1, minP: 0, seed: 1 }).distribution(logits);
    expect(topK.ids).toEqual([1, 4, 2]);
    const e = [3, 2.9, 2].map((x) => Math.exp(x));
    const z = e[0] + e[1] + e[2];
    topK.probs.forEach((p, i) => expect(p).toBeCloseTo(e[i] / z, 6));

    // p(1) ≈ 0.40, p(4) ≈ 0.36: 0.7 needs the first two only.
    const topP = new Sampler({ temperature: 1, topK: 0, topP: 0.7, minP: 0, seed: 1 }).distribution(logits);
    expect(topP.ids).toEqual([1, 4]);

    const minP = new Sampler({ temperature: 1, topK: 0, topP: 1, minP: 0.5, seed: 1 }).distribution(logits);
    expect(minP.ids).toEqual([1, 4]);
  });

  it('applies temperature after the filters', () => {
    const hot = new Sampler({ temperature: 2, topK: 2, topP: 1, minP: 0, seed: 1 }).distribution(logits);
    const a = Math.exp(3 / 2);
    const b = Math.exp(2.9 / 2);
    expect(hot.probs[0]).toBeCloseTo(a / (a + b), 6);
  });

  it('draws with the frequencies of its distribution', () => {
    const s = new Sampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed: 123 });
    const dist = s.distribution(logits);
    const counts = new Map<number, number>();
    const n = 50_000;
    for (let i = 0; i < n; i++) {
      const id = s.sample(logits, []);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    dist.ids.forEach((id, i) => {
      const expected = dist.probs[i] * n;
      expect(Math.abs((counts.get(id) ?? 0) - expected)).toBeLessThan(4 * Math.sqrt(expected) + 5);
    });
  });

  it('gives the same tokens for the same seed', () => {
    const run = (seed: number) => {
      const s = new Sampler({ temperature: 1.5, seed });
      return Array.from({ length: 50 }, () => s.sample(logits, []));
    };
    expect(run(9)).toEqual(run(9));
    expect(run(9)).not.toEqual(run(10));
  });

  it('penalizes recent tokens like llama.cpp (divide positive logits, multiply negative ones)', () => {
    const s = new Sampler({ temperature: 0, repeatPenalty: 2, repeatLastN: 2, seed: 1 });
    // 1 is penalized to 1.5 → 4 (2.9) wins; 1 is outside the last 2 tokens in the second call.
    expect(s.sample(logits, [1, 5])).toBe(4);
    expect(s.sample(logits, [1, 5, 5])).toBe(1);
  });

  it('samples from top-k candidates (as a GPU reads them back) exactly as from the whole row', () => {
    const rng = new Random(5);
    const row = Float32Array.from({ length: 500 }, () => Math.round((rng.next() * 8 - 4) * 16) / 16); // with ties
    const topOf = (k: number) => {
      const ids = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b).slice(0, k);
      return { ids, logits: ids.map((id) => row[id]!) };
    };
    for (const options of [{ topK: 40 }, { topK: 5, topP: 1, minP: 0 }, { topK: 256, temperature: 1.3 }, { topK: 900, topP: 1, minP: 0 }]) {
      const [whole, fromTop] = [new Sampler({ ...options, seed: 3 }), new Sampler({ ...options, seed: 3 })];
      const k = fromTop.candidatesNeeded(1000, row.length);
      expect(k).toBe(Math.min(options.topK, row.length)); // a top-k past the vocabulary takes the whole row
      expect(fromTop.candidateDistribution(topOf(k))).toEqual(whole.distribution(row));
      for (let i = 0; i < 20; i++) expect(fromTop.sampleCandidates(topOf(k))).toBe(whole.sample(row, []));
    }
  });

  it('needs every logit for greedy picks, a repetition penalty, no top-k or one past the backend maximum', () => {
    expect(new Sampler({ temperature: 0 }).candidatesNeeded(256, 4096)).toBe(0);
    expect(new Sampler({ repeatPenalty: 1.1 }).candidatesNeeded(256, 4096)).toBe(0);
    expect(new Sampler({ repeatPenalty: 1.1, repeatLastN: 0 }).candidatesNeeded(256, 4096)).toBe(40);
    expect(new Sampler({ topK: 0 }).candidatesNeeded(256, 4096)).toBe(0);
    expect(new Sampler({ topK: 300 }).candidatesNeeded(256, 4096)).toBe(0);
    expect(new Sampler({ topK: 300 }).candidatesNeeded(256, 200)).toBe(200); // all of a small vocabulary
    expect(new Sampler().candidatesNeeded(0, 4096)).toBe(0);
  });

  it('drops a GPU top-k padding slot (u32 max) where a row has fewer finite logits than k', () => {
    const s = new Sampler({ topK: 4, topP: 1, minP: 0, temperature: 1 });
    const padded = s.candidateDistribution({ ids: [2, 0, 0xffffffff, 0xffffffff], logits: [1, 0, -3.4e38, -3.4e38] });
    expect(padded.ids).toEqual([2, 0]);
    expect(padded.probs[0]! + padded.probs[1]!).toBeCloseTo(1, 12);
  });

  it('rejects out-of-range options with a typed error', () => {
    expect(() => new Sampler({ temperature: -1 })).toThrow(InvalidArgumentError);
    expect(() => new Sampler({ topP: 2 })).toThrow(/topP/);
    expect(() => new Sampler({ seed: Number.NaN })).toThrow(/seed/);
  });
});

describe('helpers', () => {
  it('argmax takes the first maximum', () => {
    expect(argmax([1, 5, 5, 2])).toBe(1);
  });
  it('draw walks the cumulative distribution', () => {
    const c = { ids: [7, 8, 9], probs: [0.5, 0.25, 0.25] };
    expect(draw(c, 0)).toBe(7);
    expect(draw(c, 0.6)).toBe(8);
    expect(draw(c, 0.99)).toBe(9);
  });
});
