import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COPY_HEAD, buildHeadGGUF, type HeadSpec } from '../../../test/fixtures/recycle-head.js';
import { makeTestModel, STANDARD_SPECS } from '../../../test/fixtures/models.js';
import { InvalidArgumentError } from '../errors.js';
import { draftingPays } from './modes.js';
import { decode } from '../generate.js';
import { loadModel, openContext } from '../model.js';
import type { DecodeMode, GenerateOptions, Model } from '../types.js';

const copyHead = COPY_HEAD;
const randomHead: HeadSpec = { kind: 'random', layers: 2, heads: 4, kvHeads: 4, ffn: 128, type: 'Q8_0', seed: 2 };

async function withHead(fixture: keyof typeof STANDARD_SPECS, head: HeadSpec, options = {}): Promise<Model> {
  const path = await makeTestModel(STANDARD_SPECS[fixture]!);
  return loadModel(path, { recycle: buildHeadGGUF(path, head), ...options });
}

const PROMPTS = ['Once upon a time', 'function add(a, b) {', 'The café 🚀 said'];

async function run(model: Model, prompt: string | number[], mode: DecodeMode, options: GenerateOptions = {}) {
  // Not adaptive: these tests count passes and accepted drafts, which must not depend on timings.
  return model.complete(prompt, { maxTokens: 40, temperature: 0, ...options, decode: { mode, adaptive: false, ...options.decode } });
}

describe('recycle head loading', () => {
  it('refuses a head made for another base, saying why', async () => {
    const path = await makeTestModel(STANDARD_SPECS.q8_llama_tied!);
    const foreign = buildHeadGGUF(path, copyHead, ['0123456789abcdef']);
    await expect(loadModel(path, { recycle: foreign })).rejects.toThrow(InvalidArgumentError);
    await expect(loadModel(path, { recycle: foreign })).rejects.toThrow(/made for .*token embedding hash/);
    const other = await makeTestModel(STANDARD_SPECS.f16_gpt2_gqa!);
    await expect(loadModel(path, { recycle: buildHeadGGUF(other, copyHead) })).rejects.toThrow(/made for/);
  });

  it('refuses a base model given as a head', async () => {
    const path = await makeTestModel(STANDARD_SPECS.q8_llama_tied!);
    await expect(loadModel(path, { recycle: path })).rejects.toThrow(/expected 'recycle'/);
  });

  it('says it has a head', async () => {
    const model = await withHead('q8_llama_tied', copyHead);
    expect(model.info.hasRecycleHead).toBe(true);
    model.dispose();
  });
});

describe.each([
  ['q8_llama_tied', copyHead],
  ['q8_llama_tied', randomHead],
  ['f16_gpt2_gqa', copyHead],
  ['q4_gpt2', { ...copyHead, heads: 8, kvHeads: 4 }],
  ['f32_odd', { ...randomHead, heads: 3, kvHeads: 3, type: 'F32' }],
] as const)('%s with a %o head', (fixture, head) => {
  it('exact and chain give plain decoding token for token (greedy)', async () => {
    const model = await withHead(fixture, head as HeadSpec);
    for (const prompt of PROMPTS) {
      const off = await run(model, prompt, 'off');
      const exact = await run(model, prompt, 'exact');
      const chain = await run(model, prompt, 'chain', { decode: { mode: 'chain', draftLength: 3, adaptive: false } });
      expect(exact.tokens).toEqual(off.tokens);
      expect(exact.text).toBe(off.text);
      expect(chain.tokens).toEqual(off.tokens);
      const n = off.tokens.length;
      // Every pass yields its kept drafts and then one token of its own, unless output ended in between.
      expect([n - 1, n]).toContain(exact.stats.fullPasses + exact.stats.recycled);
      expect([n - 1, n]).toContain(chain.stats.fullPasses + chain.stats.recycled);
      expect(exact.stats.acceptanceRate).toBeGreaterThanOrEqual(0);
    }
    model.dispose();
  });

  it('marks each token with where it came from', async () => {
    const model = await withHead(fixture, head as HeadSpec);
    for (const mode of ['off', 'exact', 'chain', 'fast'] as const) {
      const stream = model.generate(PROMPTS[0]!, { maxTokens: 30, temperature: 0, decode: { mode, adaptive: false } });
      const sources: string[] = [];
      for await (const token of stream) sources.push(token.source);
      const stats = await stream.stats;
      expect(sources.filter((s) => s === 'recycled').length, mode).toBe(stats.recycled);
      expect(sources[0], 'the first token comes from the prefill').toBe('pass');
    }
    model.dispose();
  });

  it('fast runs one full pass per two tokens', async () => {
    const model = await withHead(fixture, head as HeadSpec);
    const fast = await run(model, PROMPTS[0]!, 'fast', { maxTokens: 41 });
    expect(fast.tokens).toHaveLength(41);
    expect(fast.stats.fullPasses).toBe(20);
    expect(fast.stats.recycled).toBe(20);
    expect(fast.stats.tokensPerPass).toBe(2);
    model.dispose();
  });
});

describe('recycled decoding', () => {
  it('accepts most copy-head guesses on a repetitive model and reports it', async () => {
    const model = await withHead('q8_llama_tied', copyHead);
    const exact = await run(model, PROMPTS[0]!, 'exact', { maxTokens: 60 });
    expect(exact.stats.acceptanceRate).toBeGreaterThan(0.3);
    expect(exact.stats.fullPasses).toBeLessThan(59);
    expect(exact.stats.tokensPerPass).toBeGreaterThan(1.3);
    model.dispose();
  });

  it('reuses the cache across calls and stays exact', async () => {
    const model = await withHead('f16_gpt2_gqa', copyHead);
    const fresh = await run(model, 'A B C D E F', 'off');
    await run(model, 'A B C', 'exact', { maxTokens: 5 });
    const reused = await run(model, 'A B C D E F', 'exact');
    expect(reused.tokens).toEqual(fresh.tokens);
    model.dispose();
  });

  it('rebuilds the head row of the first changed token when a prompt diverges from the cached one', async () => {
    // The demo model and its trained head: with a random head a stale row rarely changes a guess.
    const demo = (file: string) => fileURLToPath(new URL(`../../../models/demo/${file}`, import.meta.url));
    const load = () => loadModel(demo('demo-q8_0.gguf'), { recycle: demo('demo-recycle.gguf') });
    const reused = await load();
    const base = reused.tokenize('Once upon a time, there was a little girl named');
    for (let t = 100; t < 130; t++) {
      const fresh = await load();
      const expected = await run(fresh, [...base, t + 1], 'fast', { maxTokens: 12 });
      fresh.dispose();
      await run(reused, [...base, t], 'fast', { maxTokens: 12 });
      const got = await run(reused, [...base, t + 1], 'fast', { maxTokens: 12 });
      expect(got.tokens).toEqual(expected.tokens);
    }
    reused.dispose();
  });

  it('stops at the end of the context in every mode', async () => {
    const model = await withHead('q8_llama_tied', copyHead, { contextLength: 24 });
    const prompt = model.tokenize('one two three');
    const off = await model.complete(prompt, { maxTokens: 100, temperature: 0 });
    for (const mode of ['exact', 'chain', 'fast'] as const) {
      const out = await model.complete(prompt, { maxTokens: 100, temperature: 0, decode: { mode, adaptive: false } });
      expect(out.finishReason).toBe('length');
      expect(prompt.length + out.tokens.length).toBe(25);
      if (mode !== 'fast') expect(out.tokens).toEqual(off.tokens);
    }
    model.dispose();
  });

  it('refuses decode modes without a head, and bad draft lengths', async () => {
    const path = await makeTestModel(STANDARD_SPECS.q8_llama_tied!);
    const plain = await loadModel(path);
    await expect(plain.complete('x', { decode: { mode: 'fast' } })).rejects.toThrow(/recycle head/);
    plain.dispose();
    const model = await withHead('q8_llama_tied', copyHead);
    await expect(model.complete('x', { decode: { mode: 'chain', draftLength: 1 } })).rejects.toThrow(/draftLength/);
    await expect(model.complete('x', { decode: { mode: 'sideways' as DecodeMode } })).rejects.toThrow(/decode mode/);
    model.dispose();
  });

  it('samples from the same distribution as plain decoding (speculative acceptance)', async () => {
    // Few candidates per step (top-k 4, flattened by temperature 25: this fixture's logits are large) and
    // many seeds, so a wrong acceptance rule would show: the copy head's guess is right about 60% of the
    // time here, and always accepting it would pick it far more often than p says.
    const model = await withHead('q8_llama_tied', copyHead);
    const prompt = model.tokenize('The sea');
    const options = { maxTokens: 3, temperature: 25, topK: 4, topP: 1, minP: 0 };
    const samples = 1500;
    const counts = { off: new Map<string, number>(), exact: new Map<string, number>() };
    let accepted = 0;
    for (const mode of ['off', 'exact'] as const) {
      for (let seed = 0; seed < samples; seed++) {
        const out = await model.complete(prompt, { ...options, seed, decode: { mode, adaptive: false } });
        if (mode === 'exact') accepted += out.stats.recycled;
        const key = out.tokens.slice(1, 3).join(',');
        counts[mode].set(key, (counts[mode].get(key) ?? 0) + 1);
      }
    }
    expect(accepted).toBeGreaterThan(samples / 10); // the accept branch really ran
    // Two-sample chi-square over outcomes seen at least 10 times in total (the rest pooled).
    let chi2 = 0;
    let df = -1;
    let pooledA = 0;
    let pooledB = 0;
    for (const key of new Set([...counts.off.keys(), ...counts.exact.keys()])) {
      const a = counts.off.get(key) ?? 0;
      const b = counts.exact.get(key) ?? 0;
      if (a + b < 10) {
        pooledA += a;
        pooledB += b;
        continue;
      }
      chi2 += (a - b) ** 2 / (a + b);
      df++;
    }
    if (pooledA + pooledB > 0) {
      chi2 += (pooledA - pooledB) ** 2 / (pooledA + pooledB);
      df++;
    }
    // 99.9th percentile of chi-square with df degrees of freedom (Wilson–Hilferty).
    const z = 3.09;
    const critical = df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
    expect(df).toBeGreaterThan(3);
    expect(chi2).toBeLessThan(critical);
    model.dispose();
  });
});

describe('logprobs', () => {
  it('are the full model\'s, the same in exact and chain as in plain decoding, and refused in fast mode at the call', async () => {
    const model = await withHead('q8_llama_tied', copyHead);
    const prompt = model.tokenize(PROMPTS[0]!);
    const collect = async (mode: DecodeMode, options: GenerateOptions = {}) => {
      const stream = model.generate(prompt, { maxTokens: 20, temperature: 0, logprobs: 3, ...options, decode: { mode, adaptive: false } });
      const tokens = [];
      for await (const token of stream) tokens.push(token);
      return tokens;
    };
    const off = await collect('off');
    // The reference: log-softmax of each position's logits from a fresh evaluation of the whole sequence.
    const rows = await model.evaluate([...prompt, ...off.slice(0, -1).map((t) => t.id)]);
    off.forEach((token, i) => {
      const row = rows[prompt.length - 1 + i]!;
      const max = Math.max(...row);
      const norm = max + Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0));
      expect(token.logprob!).toBeCloseTo(row[token.id]! - norm, 2);
      expect(token.topLogprobs!.map((t) => t.id)[0]).toBe(token.id); // greedy takes the most likely
      expect(token.topLogprobs).toHaveLength(3);
      expect(token.topLogprobs![1]!.logprob).toBeCloseTo(row[token.topLogprobs![1]!.id]! - norm, 2);
      expect(token.topLogprobs![1]!.logprob).toBeLessThanOrEqual(token.topLogprobs![0]!.logprob);
    });
    for (const mode of ['exact', 'chain'] as const) {
      const recycled = await collect(mode);
      expect(recycled.map((t) => t.id)).toEqual(off.map((t) => t.id));
      expect(recycled.some((t) => t.source === 'recycled')).toBe(true);
      recycled.forEach((t, i) => expect(t.logprob!).toBeCloseTo(off[i]!.logprob!, 2));
    }
    // Sampling reports the model's distribution, not the filtered one it draws from.
    const sampled = await collect('off', { temperature: 5, topK: 2, seed: 3 });
    const sampledRows = await model.evaluate([...prompt, ...sampled.slice(0, -1).map((t) => t.id)]);
    sampled.forEach((token, i) => {
      const row = sampledRows[prompt.length - 1 + i]!;
      const max = Math.max(...row);
      const norm = max + Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0));
      expect(token.logprob!).toBeCloseTo(row[token.id]! - norm, 2);
    });
    expect(() => model.generate(prompt, { logprobs: 1, decode: { mode: 'fast' } })).toThrow(/not available in decode mode 'fast'/);
    expect(() => model.generate(prompt, { logprobs: 0 })).not.toThrow();
    model.dispose();
  });
});

describe('the first head row of a generation', () => {
  it("pairs the prompt's last hidden state h_{P-1} with the first generated token, at position P", async () => {
    const path = await makeTestModel(STANDARD_SPECS.q8_llama_tied!);
    const { context } = await openContext(path, { recycle: buildHeadGGUF(path, copyHead) });
    const { llama } = context;
    // Record each base pass's first position and each head pass, to name the hidden row a head row reads.
    const calls: { source: string; hiddenPos: number; tokens: number[]; pos: number }[] = [];
    let passStart = 0;
    const forward = llama.forward.bind(llama);
    const recycleForward = llama.recycleForward.bind(llama);
    llama.forward = (tokens, pos, ...rest) => ((passStart = pos), forward(tokens, pos, ...rest));
    llama.recycleForward = (source, fromRow, tokens, pos, ...rest) => {
      calls.push({ source, hiddenPos: passStart + fromRow, tokens: Array.from(tokens), pos });
      return recycleForward(source, fromRow, tokens, pos, ...rest);
    };
    // A prompt longer than one batch (so the prefill's last pass starts past 0), then one that reuses part of it.
    const words = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen';
    for (const text of [`${words} ${words}`, `${words} ${words} again`]) {
      const prompt = context.tokenizer.encode(text);
      calls.length = 0;
      const first = await (decode(context, prompt, { maxTokens: 3, temperature: 0, decode: { mode: 'exact', adaptive: false } }, () => {}).next());
      const P = prompt.length;
      const head = calls.find((c) => c.source === 'base' && c.pos <= P && P < c.pos + c.tokens.length)!;
      const at = P - head.pos;
      expect(head.tokens[at], 'the first generated token').toBe(first.value!.id);
      expect(head.hiddenPos + at, 'the hidden row it is paired with').toBe(P - 1);
      expect(context.lastPassStart).toBeGreaterThan(0);
    }
    llama.free();
  });
});

describe('adaptive drafting', () => {
  it('judges drafting by its tokens per round against what a round costs in plain passes', () => {
    // A GPU-like backend: a 2-token pass costs about one pass, a head row little.
    expect(draftingPays({ pass: 1.1, head: 0.1 }, 1, 1.6)).toBe(true);
    // This engine on the demo model: a 2-token pass costs 1.8 passes, a head row 0.27.
    expect(draftingPays({ pass: 1.8, head: 0.27 }, 1, 1.65)).toBe(false);
    expect(draftingPays({ pass: 1.8, head: 0.27 }, 1, 2)).toBe(false);
  });

  async function collect(fixture: keyof typeof STANDARD_SPECS, cost: { pass: number; head: number } | 'measured', mode: DecodeMode) {
    const path = await makeTestModel(STANDARD_SPECS[fixture]!);
    const { context } = await openContext(path, { recycle: buildHeadGGUF(path, copyHead) });
    if (cost !== 'measured') context.draftCost = async () => cost;
    const ids = context.tokenizer.encode('Once upon a time');
    const tokens: number[] = [];
    let stats: Awaited<ReturnType<Model['complete']>>['stats'] | undefined;
    for await (const t of decode(context, ids, { maxTokens: 40, temperature: 0, decode: { mode } }, (s) => (stats = s))) tokens.push(t.id);
    context.llama.free();
    return { tokens, stats: stats! };
  }

  it('stops drafting where it costs more than it saves, with the same output', async () => {
    const model = await withHead('q8_llama_tied', copyHead);
    const off = await run(model, 'Once upon a time', 'off');
    model.dispose();
    for (const mode of ['exact', 'chain'] as const) {
      const costly = await collect('q8_llama_tied', { pass: 5, head: 1 }, mode);
      expect(costly.tokens).toEqual(off.tokens);
      expect(costly.stats.draftingStopped).toBe(true);
      expect(costly.stats.proposed).toBeLessThanOrEqual(4 * 3); // judged after 4 rounds
      const cheap = await collect('q8_llama_tied', { pass: 1, head: 0 }, mode);
      expect(cheap.tokens).toEqual(off.tokens);
      expect(cheap.stats.draftingStopped).toBeUndefined();
      const measured = await collect('q8_llama_tied', 'measured', mode);
      expect(measured.tokens).toEqual(off.tokens);
    }
  });
});
