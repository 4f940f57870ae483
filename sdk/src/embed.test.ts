/**
 * model.embed() on fixture models: what each pooling reads of the final hidden states (checked through causal
 * attention: a position's state is the last state of the prefix that ends there), normalisation, lists and token
 * ids, the GGUF's pooling_type, truncation, every caller error thrown by the call, and its turn with generations on
 * the one KV cache. Numbers against llama.cpp: test/embed-parity.test.ts.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withMetadata } from '../../test/fixtures/gguf-edit.js';
import { makeTestModel, STANDARD_SPECS } from '../../test/fixtures/models.js';
import { filePooling, planEmbedding, type EmbedModel } from './embed.js';
import { ContextFullError, InvalidArgumentError, RecycleGPTError } from './errors.js';
import { loadModel } from './model.js';
import type { Tokenizer } from './tokenizer/types.js';
import type { Model } from './types.js';

const LONG = 'The keeper climbed the stairs every evening to light the lamp, and the ships that passed the rocks at night saw it burning.';
let bytes: Uint8Array;
let model: Model;

beforeAll(async () => {
  bytes = new Uint8Array(await readFile(await makeTestModel(STANDARD_SPECS.q8_llama_tied!)));
  model = await loadModel(bytes);
});
afterAll(() => model.dispose());

const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
const withPooling = (value: number) => loadModel(withMetadata(bytes, [{ key: 'llama.pooling_type', type: 'u32', value }]));

describe('embed', () => {
  it("pools the final hidden states: mean over every token, the first token's (cls), the last token's, across passes", async () => {
    const ids = model.tokenize(LONG);
    expect(ids.length).toBeGreaterThan(32); // more than one WASM pass
    const raw = { normalize: false } as const;
    // With causal attention, position p's state is the last state of ids[0..p].
    const states = (await model.embed(ids.map((_, p) => ids.slice(0, p + 1)), { ...raw, pooling: 'last' })).vectors;
    const mean = states[0]!.map((_, j) => states.reduce((s, v) => s + v[j]!, 0) / states.length);
    const pooled = async (pooling: 'mean' | 'cls' | 'last') => (await model.embed([ids], { ...raw, pooling })).vectors[0]!;
    expect(maxAbsDiff(await pooled('mean'), mean)).toBeLessThan(1e-5);
    expect(await pooled('cls')).toEqual(states[0]);
    expect(await pooled('last')).toEqual(states.at(-1));
    expect(maxAbsDiff(await pooled('last'), states.at(-2)!)).toBeGreaterThan(1e-2);
  });

  it('normalises to unit length by default; normalize: false gives the pooled state itself', async () => {
    const unit = await model.embed('Once upon a time');
    const raw = await model.embed('Once upon a time', { normalize: false });
    expect(unit).toMatchObject({ pooling: 'mean', normalized: true, truncated: [] });
    expect(raw.normalized).toBe(false);
    expect(unit.vectors[0]).toHaveLength(model.info.dim);
    expect(norm(unit.vectors[0]!)).toBeCloseTo(1, 6);
    expect(norm(raw.vectors[0]!)).not.toBeCloseTo(1, 2);
    expect(maxAbsDiff(unit.vectors[0]!, raw.vectors[0]!.map((x) => x / norm(raw.vectors[0]!)))).toBeLessThan(1e-6);
  });

  it('embeds each input of a list as if alone, in order; token ids run as given; counts tokens with BOS', async () => {
    const texts = ['first text', 'a second, longer text', LONG];
    const together = await model.embed(texts);
    for (const [i, text] of texts.entries()) expect(together.vectors[i]).toEqual((await model.embed(text)).vectors[0]);
    const ids = model.tokenize('first text');
    expect(ids[0]).toBe(model.tokenizer.bos);
    expect(together.inputTokens[0]).toBe(ids.length);
    expect((await model.embed(ids)).vectors[0]).toEqual(together.vectors[0]);
    expect((await model.embed([ids, 'a second, longer text'])).vectors).toEqual(together.vectors.slice(0, 2));
    // addSpecial: false leaves BOS out, and so changes the vector.
    const bare = await model.embed('first text', { addSpecial: false });
    expect(bare.inputTokens).toEqual([ids.length - 1]);
    expect(maxAbsDiff(bare.vectors[0]!, together.vectors[0]!)).toBeGreaterThan(1e-3);
  });

  it("pools as the GGUF's <arch>.pooling_type says; mean without one; a reranker's rank needs the pooling option", async () => {
    expect(model.info.pooling).toBe('mean');
    const text = 'Once upon a time';
    const expected = { 0: 'mean', 1: 'mean', 2: 'cls', 3: 'last' } as const;
    for (const [value, pooling] of Object.entries(expected)) {
      const file = await withPooling(Number(value));
      try {
        expect(file.info.pooling).toBe(pooling);
        const result = await file.embed(text);
        expect(result.pooling).toBe(pooling);
        expect(result.vectors).toEqual((await model.embed(text, { pooling })).vectors);
      } finally {
        file.dispose();
      }
    }
    const rank = await withPooling(4);
    try {
      expect(rank.info.pooling).toBeUndefined();
      expect(() => rank.embed(text)).toThrow(/pooling_type.*pass pooling: 'mean', 'cls' or 'last'/);
      expect((await rank.embed(text, { pooling: 'last' })).vectors).toEqual((await model.embed(text, { pooling: 'last' })).vectors);
    } finally {
      rank.dispose();
    }
  });

  it("truncate: 'end' cuts an input to the context; by default a long input is CONTEXT_FULL, naming it", async () => {
    const short = await loadModel(bytes, { contextLength: 16 });
    try {
      const ids = short.tokenize(LONG);
      expect(() => short.embed(['fits', LONG])).toThrow(ContextFullError);
      expect(() => short.embed(['fits', LONG])).toThrow(new RegExp(`${ids.length} tokens but the context holds 16; input 1 is too long: pass truncate: 'end'`));
      const cut = await short.embed(['fits', LONG], { truncate: 'end' });
      expect(cut.truncated).toEqual([1]);
      expect(cut.inputTokens).toEqual([short.tokenize('fits').length, 16]);
      expect(cut.vectors[1]).toEqual((await short.embed([ids.slice(0, 16)])).vectors[0]);
    } finally {
      short.dispose();
    }
  });

  it('keeps an end-of-sequence token the model appends last when it truncates', () => {
    const tokenizer = { addEos: true, eos: 2, encode: (text: string) => [1, ...Array.from(text, (c) => c.charCodeAt(0)), 2] } as unknown as Tokenizer;
    const plan = planEmbedding('abcdef', { truncate: 'end' }, { ...PLAN_MODEL, tokenizer, contextLength: 4 });
    expect(plan.inputs).toEqual([[1, 97, 98, 2]]);
    // Token ids are never changed but cut.
    expect(planEmbedding([[5, 6, 7, 8, 9]], { truncate: 'end' }, { ...PLAN_MODEL, tokenizer, contextLength: 4 }).inputs).toEqual([[5, 6, 7, 8]]);
  });

  it('throws every caller error at the call, before anything runs', () => {
    const cases: [unknown, object, RegExp][] = [
      [[], {}, /no inputs/],
      [5, {}, /takes a string, an array of token ids, or an array of those; got number/],
      [[1, 'a'], {}, /input 0 is number: give strings or arrays of token ids/],
      [['a', null], {}, /input 1 is object/],
      [[[1, 2], [3, 1e9]], {}, /input 1 has token id 1000000000, out of range: the vocabulary has \d+ tokens/],
      [[[1.5]], {}, /input 0 has token id 1.5/],
      [[[]], {}, /input 0 has no tokens/],
      ['x', { pooling: 'max' }, /pooling must be 'mean', 'cls' or 'last', got max/],
      ['x', { normalize: 'yes' }, /normalize must be true or false/],
      ['x', { truncate: 'start' }, /truncate must be 'error' or 'end'/],
    ];
    for (const [input, options, message] of cases) {
      expect(() => model.embed(input as string, options), message.source).toThrow(InvalidArgumentError);
      expect(() => model.embed(input as string, options)).toThrow(message);
    }
  });

  it('refuses on a backend that gives no hidden states (WebGPU), saying which to use', () => {
    expect(() => planEmbedding('x', {}, { ...PLAN_MODEL, hasHidden: false, backend: 'webgpu' })).toThrow(/runs on the WebAssembly backend; this model runs on webgpu. Load it with backend: 'wasm'/);
  });

  it('gives an empty text no tokens on a vocabulary without BOS: an error, not an empty vector', async () => {
    const gpt2 = await loadModel(await makeTestModel(STANDARD_SPECS.f16_gpt2_gqa!));
    try {
      expect(() => gpt2.embed(['a', ''])).toThrow(/input 1 has no tokens/);
    } finally {
      gpt2.dispose();
    }
  });

  it('runs only when awaited, in its turn: after a running generation, before one asked for later', async () => {
    const events: string[] = [];
    const run = model.embed('waiting');
    expect(run.inputTokens).toEqual([model.tokenize('waiting').length]);
    const first = model.generate('Once upon a time', { maxTokens: 8, temperature: 0 });
    const iterator = first[Symbol.asyncIterator]();
    await iterator.next(); // the generation holds the turn
    const embedded = run.then(() => events.push('embed'));
    const later = model.complete('Another prompt', { maxTokens: 2, temperature: 0 }).then(() => events.push('later generation'));
    for (let next = await iterator.next(); !next.done; next = await iterator.next());
    events.push('generation');
    await Promise.all([embedded, later]);
    expect(events).toEqual(['generation', 'embed', 'later generation']);
  });

  it('leaves generations right: the prefix cache keeps what the embedding did not overwrite', async () => {
    const prompt = 'Once upon a time there was';
    const options = { maxTokens: 8, temperature: 0 };
    const first = await model.complete(prompt, options);
    const ids = model.tokenize(prompt);
    const other = model.tokenize('Something else entirely');
    let same = 0;
    while (ids[same] === other[same]) same++;
    expect(same).toBeLessThan(ids.length - 1);
    await model.embed(other);
    const afterOther = await model.complete(prompt, options);
    expect(afterOther.tokens).toEqual(first.tokens);
    expect(afterOther.stats.reusedPromptTokens).toBe(same); // what the embedding left as it was
    // An input that repeats the cached tokens' start leaves the cache whole.
    await model.embed([ids.slice(0, 3)]);
    const afterSame = await model.complete(prompt, options);
    expect(afterSame.tokens).toEqual(first.tokens);
    expect(afterSame.stats.reusedPromptTokens).toBe(ids.length - 1);
  });

  it('rejects with ABORTED when its signal fired; a disposed model throws DISPOSED', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(model.embed('x', { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    const gone = await loadModel(bytes);
    gone.dispose();
    expect(() => gone.embed('x')).toThrow(RecycleGPTError);
    expect(() => gone.embed('x')).toThrow(/disposed/);
  });
});

describe('filePooling', () => {
  it("reads llama.cpp's pooling_type numbers under the architecture's prefix", () => {
    expect([undefined, 0, 1, 2, 3, 4, 7, 'mean'].map((value) => filePooling(value === undefined ? {} : { 'qwen3.pooling_type': value }, 'qwen3'))).toEqual([
      'mean', 'mean', 'mean', 'cls', 'last', undefined, undefined, undefined,
    ]);
    expect(filePooling({ 'llama.pooling_type': 3 }, 'qwen3')).toBe('mean');
  });
});

const PLAN_MODEL: EmbedModel = {
  tokenizer: { addEos: false, encode: () => [1] } as unknown as Tokenizer,
  vocabSize: 100,
  contextLength: 64,
  pooling: 'mean',
  hasHidden: true,
  backend: 'wasm',
};
