import { InvalidArgumentError } from './errors.js';
import type { SamplingOptions } from './types.js';

/** xoshiro128** seeded through splitmix32: small, fast, and the same sequence in every runtime. */
export class Random {
  private s = new Uint32Array(4);

  /** Any integer; its low 32 bits pick the sequence. */
  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** Uniform in [0, 1). */
  next(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result / 4294967296;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A probability distribution over a few candidate tokens, most likely first. */
export interface Candidates {
  ids: number[];
  probs: number[];
}

export interface ResolvedSampling {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  repeatLastN: number;
  seed: number;
}

/** llama.cpp's defaults, so that the same options mean the same thing in both. */
export function resolveSampling(options: SamplingOptions = {}): ResolvedSampling {
  const resolved: ResolvedSampling = {
    temperature: options.temperature ?? 0.8,
    topK: options.topK ?? 40,
    topP: options.topP ?? 0.95,
    minP: options.minP ?? 0.05,
    repeatPenalty: options.repeatPenalty ?? 1,
    repeatLastN: options.repeatLastN ?? 64,
    seed: options.seed ?? (Math.random() * 2 ** 32) >>> 0,
  };
  checkRange('temperature', resolved.temperature, 0, 100);
  checkRange('topK', resolved.topK, 0, 1e9);
  checkRange('topP', resolved.topP, 0, 1);
  checkRange('minP', resolved.minP, 0, 1);
  checkRange('repeatPenalty', resolved.repeatPenalty, 0, 100);
  checkRange('repeatLastN', resolved.repeatLastN, 0, 1e9);
  checkRange('seed', resolved.seed, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (!Number.isInteger(resolved.seed)) throw new InvalidArgumentError(`seed must be an integer, got ${resolved.seed}`);
  return resolved;
}

function checkRange(name: string, value: number, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be a number between ${min} and ${max}, got ${String(value)}`);
  }
}

/**
 * The sampling chain, in llama.cpp's order: repetition penalty → top-k → top-p → min-p (both on the
 * temperature-1 distribution) → temperature → draw. Temperature 0 is greedy (argmax after the penalty).
 */
export class Sampler {
  readonly options: ResolvedSampling;
  readonly random: Random;

  constructor(options: SamplingOptions = {}) {
    this.options = resolveSampling(options);
    this.random = new Random(this.options.seed);
  }

  get greedy(): boolean {
    return this.options.temperature === 0;
  }

  /** Greedy with nothing that reads the logits first (no repetition penalty): the pick is the logits' argmax. */
  get argmaxOnly(): boolean {
    return this.greedy && (this.options.repeatPenalty === 1 || this.options.repeatLastN === 0);
  }

  /**
   * The k whose largest logits are all this sampler reads from a row of `vocabSize` (no repetition penalty, a top-k,
   * at most `maxTopK` of them), or 0 where it needs every logit.
   */
  candidatesNeeded(maxTopK: number, vocabSize: number): number {
    const { topK, repeatPenalty, repeatLastN } = this.options;
    const penalty = repeatPenalty !== 1 && repeatLastN > 0;
    const k = Math.min(topK, vocabSize);
    return !this.greedy && !penalty && k > 0 && k <= maxTopK ? k : 0;
  }

  /**
   * Picks the next token; `recent` is the sequence so far (prompt and output), for the repetition penalty. With
   * `allowed` (a bitset over token ids, bit id & 31 of word id >>> 5: a grammar's mask), only those tokens are
   * candidates, before every other step of the chain.
   */
  sample(logits: Float32Array, recent: ArrayLike<number>, allowed?: Uint32Array): number {
    if (this.greedy) return argmax(this.penalize(logits, recent), allowed);
    return draw(this.distribution(logits, recent, allowed), this.random.next());
  }

  /** The distribution `sample` draws from, after every filter. */
  distribution(logits: Float32Array, recent: ArrayLike<number> = [], allowed?: Uint32Array): Candidates {
    const penalized = this.penalize(logits, recent);
    if (this.greedy) return { ids: [argmax(penalized, allowed)], probs: [1] };
    const { topK } = this.options;
    const ids = topIds(penalized, topK > 0 ? topK : penalized.length, allowed);
    return this.filter(ids, ids.map((id) => penalized[id]));
  }

  /**
   * `distribution` from a row's top-k candidates (largest first, ties lower id first) as a GPU reads them back,
   * for a sampler whose `candidatesNeeded` is k: the same ids and probabilities as from the whole row of finite
   * logits. Ids past the vocabulary (a GPU's padding where a row has fewer than k finite logits) are dropped.
   */
  candidateDistribution(top: { ids: ArrayLike<number>; logits: ArrayLike<number> }): Candidates {
    const ids: number[] = [];
    const values: number[] = [];
    for (let i = 0; i < top.ids.length; i++) {
      if (top.ids[i]! === NO_TOKEN) continue;
      ids.push(top.ids[i]!);
      values.push(top.logits[i]!);
    }
    return this.filter(ids, values);
  }

  /** `sample` from a row's top-k candidates (see candidateDistribution). */
  sampleCandidates(top: { ids: ArrayLike<number>; logits: ArrayLike<number> }): number {
    return draw(this.candidateDistribution(top), this.random.next());
  }

  /** Top-p, min-p and temperature over the top-k `ids` (largest first) with their logits `values`. */
  private filter(ids: number[], values: number[]): Candidates {
    const { topP, minP, temperature } = this.options;
    const probs = softmax(values);

    let keep = ids.length;
    if (topP < 1) {
      let mass = 0;
      for (let i = 0; i < ids.length; i++) {
        mass += probs[i];
        if (mass >= topP) {
          keep = i + 1;
          break;
        }
      }
    }
    if (minP > 0) {
      const floor = probs[0] * minP;
      let i = 1;
      while (i < keep && probs[i] >= floor) i++;
      keep = i;
    }
    return { ids: ids.slice(0, keep), probs: softmax(values.slice(0, keep).map((v) => v / temperature)) };
  }

  private penalize(logits: Float32Array, recent: ArrayLike<number>): Float32Array {
    const { repeatPenalty, repeatLastN } = this.options;
    if (repeatPenalty === 1 || repeatLastN === 0 || recent.length === 0) return logits;
    const out = logits.slice();
    const seen = new Set<number>();
    for (let i = Math.max(0, recent.length - repeatLastN); i < recent.length; i++) seen.add(recent[i]);
    for (const id of seen) {
      if (id < 0 || id >= out.length) continue;
      out[id] = out[id] > 0 ? out[id] / repeatPenalty : out[id] * repeatPenalty;
    }
    return out;
  }
}

/** The id a GPU's top-k gives a slot no finite logit filled (u32 max). */
const NO_TOKEN = 0xffffffff;

/** The first largest value's index; with `allowed` (a bitset, see Sampler.sample) among those ids only (-1 if none). */
export function argmax(values: ArrayLike<number>, allowed?: Uint32Array): number {
  if (!allowed) {
    let best = 0;
    for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
    return best;
  }
  let best = -1;
  const words = Math.min(allowed.length, (values.length + 31) >>> 5);
  for (let w = 0; w < words; w++) {
    for (let bits = allowed[w]; bits !== 0; bits &= bits - 1) {
      const id = (w << 5) | (31 - Math.clz32(bits & -bits));
      if (id < values.length && (best < 0 || values[id] > values[best])) best = id;
    }
  }
  return best;
}

/** Draws from a distribution with a uniform number u in [0, 1). */
export function draw(candidates: Candidates, u: number): number {
  let acc = 0;
  for (let i = 0; i < candidates.ids.length; i++) {
    acc += candidates.probs[i];
    if (u < acc) return candidates.ids[i];
  }
  return candidates.ids[candidates.ids.length - 1];
}

/** Softmax of values sorted largest first. */
function softmax(values: number[]): number[] {
  const exps = values.map((v) => Math.exp(v - values[0]));
  let sum = 0;
  for (const e of exps) sum += e;
  return exps.map((e) => e / sum);
}

/** The k largest entries, largest first (ties: lower id first), in O(n log k); with `allowed`, among those ids only. */
export function topIds(values: Float32Array, k: number, allowed?: Uint32Array): number[] {
  if (!allowed && k >= values.length) {
    return Array.from(values.keys()).sort((a, b) => values[b] - values[a] || a - b);
  }
  // A min-heap of the best k seen so far; its root is the weakest of them.
  const heap: number[] = [];
  const worse = (a: number, b: number) => values[a] < values[b] || (values[a] === values[b] && a > b);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l], heap[m])) m = l;
      if (r < heap.length && worse(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  const offer = (id: number) => {
    if (heap.length < k) {
      heap.push(id);
      for (let i = heap.length - 1; i > 0; ) {
        const p = (i - 1) >> 1;
        if (!worse(heap[i], heap[p])) break;
        [heap[i], heap[p]] = [heap[p], heap[i]];
        i = p;
      }
    } else if (worse(heap[0], id)) {
      heap[0] = id;
      siftDown(0);
    }
  };
  if (allowed) {
    // Straight from the bitset: a grammar's mask may hold most of a 151k vocabulary.
    const words = Math.min(allowed.length, (values.length + 31) >>> 5);
    for (let w = 0; w < words; w++) {
      for (let bits = allowed[w]; bits !== 0; bits &= bits - 1) {
        const id = (w << 5) | (31 - Math.clz32(bits & -bits));
        if (id < values.length) offer(id);
      }
    }
  } else for (let id = 0; id < values.length; id++) offer(id);
  return heap.sort((a, b) => values[b] - values[a] || a - b);
}
