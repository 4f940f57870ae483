import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestModel, STANDARD_SPECS } from '../../test/fixtures/models.js';
import { writeGGUF } from '../../test/fixtures/gguf-writer.js';
import { ContextFullError, GGUFError, InvalidArgumentError, RecycleGPTError, UnsupportedError } from './errors.js';
import { loadModel } from './model.js';
import type { Model } from './types.js';

let path: string;
let model: Model;

beforeAll(async () => {
  path = await makeTestModel(STANDARD_SPECS.q8_llama_tied!);
  model = await loadModel(path);
});
afterAll(() => model.dispose());

describe('loadModel', () => {
  it('describes the model', () => {
    expect(model.info).toMatchObject({
      architecture: 'llama',
      dim: 128,
      layers: 2,
      heads: 4,
      kvHeads: 1,
      ffnDim: 256,
      tokenizer: 'llama',
      hasRecycleHead: false,
      contextLength: 256,
    });
    expect(model.info.tensorTypes.Q8_0).toBeGreaterThan(0);
    expect(model.info.parameters).toBeGreaterThan(100_000);
  });

  it('loads the same model from bytes and reports progress up to the total', async () => {
    const bytes = await readFile(path);
    const seen: number[] = [];
    const again = await loadModel(new Uint8Array(bytes), { onProgress: (p) => seen.push(p.loaded) });
    expect(seen.at(-1)).toBe(bytes.length);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    const a = await model.complete('The sea', { maxTokens: 8, temperature: 0 });
    const b = await again.complete('The sea', { maxTokens: 8, temperature: 0 });
    expect(b.tokens).toEqual(a.tokens);
    again.dispose();
  });

  it('refuses a malformed file with a GGUFError', async () => {
    await expect(loadModel(new Uint8Array([0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0]))).rejects.toThrow(GGUFError);
    await expect(loadModel(new TextEncoder().encode('not a model at all'))).rejects.toThrow(/not a GGUF file/);
    const bytes = await readFile(path);
    await expect(loadModel(bytes.subarray(0, bytes.length - 100))).rejects.toThrow(/truncated/);
  });

  it('refuses architectures and tensor types it does not run, naming them', async () => {
    const other = writeGGUF({
      metadata: [{ key: 'general.architecture', type: 'string', value: 'mamba' }],
      tensors: [],
    });
    await expect(loadModel(other)).rejects.toThrow(UnsupportedError);
    await expect(loadModel(other)).rejects.toThrow(/mamba/);
  });

  it('refuses a context length the model was not trained for', async () => {
    await expect(loadModel(path, { contextLength: 100_000 })).rejects.toThrow(InvalidArgumentError);
  });
});

describe('generate', () => {
  it('streams tokens whose text adds up to the completion, with stats', async () => {
    const stream = model.generate('Once upon a time', { maxTokens: 12, temperature: 0 });
    const tokens = [];
    for await (const token of stream) tokens.push(token);
    const stats = await stream.stats;
    expect(tokens).toHaveLength(12);
    expect(stats).toMatchObject({ generatedTokens: 12, finishReason: 'length', decodeMode: 'off', fullPasses: 11 });
    expect(stats.promptTokens).toBe(model.tokenize('Once upon a time').length);
    expect(stats.decodeTokensPerSecond).toBeGreaterThan(0);
    const completion = await model.complete('Once upon a time', { maxTokens: 12, temperature: 0 });
    expect(completion.tokens).toEqual(tokens.map((t) => t.id));
    expect(completion.text).toBe(tokens.map((t) => t.text).join(''));
    expect(completion.text).toBe(model.detokenize(completion.tokens));
  });

  it('is deterministic for a seed when sampling', async () => {
    const options = { maxTokens: 16, temperature: 20, topK: 0, topP: 1, minP: 0, seed: 5 };
    const a = await model.complete('Hello', options);
    const b = await model.complete('Hello', options);
    const c = await model.complete('Hello', { ...options, seed: 6 });
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it('gives the same greedy tokens when the prompt extends the cached one', async () => {
    const fresh = await loadModel(path);
    const long = await fresh.complete('A B C D E F', { maxTokens: 10, temperature: 0 });
    await model.complete('A B C', { maxTokens: 3, temperature: 0 });
    const reused = await model.complete('A B C D E F', { maxTokens: 10, temperature: 0 });
    expect(reused.tokens).toEqual(long.tokens);
    fresh.dispose();
  });

  it('stops at a stop sequence and leaves it out', async () => {
    const free = await model.complete('Once', { maxTokens: 20, temperature: 0 });
    const cut = free.text.slice(3, 5);
    const stopped = await model.complete('Once', { maxTokens: 20, temperature: 0, stop: [cut] });
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.text).toBe(free.text.slice(0, free.text.indexOf(cut)));
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    const stream = model.generate('Once', { maxTokens: 200, temperature: 0, signal: controller.signal });
    let n = 0;
    for await (const _ of stream) if (++n === 3) controller.abort();
    const stats = await stream.stats;
    expect(stats.finishReason).toBe('abort');
    expect(stats.generatedTokens).toBeLessThan(10);
  });

  it('runs concurrent generations one at a time without mixing them', async () => {
    const prompts = ['one', 'two two', 'three three three'];
    const alone = [];
    for (const p of prompts) alone.push((await model.complete(p, { maxTokens: 15, temperature: 0 })).tokens);
    const together = await Promise.all(prompts.map((p) => model.complete(p, { maxTokens: 15, temperature: 0 })));
    expect(together.map((c) => c.tokens)).toEqual(alone);
  });

  it('stops at the end of the context', async () => {
    const small = await loadModel(path, { contextLength: 16 });
    const prompt = small.tokenize('one two three');
    const out = await small.complete(prompt, { maxTokens: 100, temperature: 0 });
    expect(out.finishReason).toBe('length');
    expect(prompt.length + out.tokens.length).toBe(16 + 1); // the last token needs no KV entry
    await expect(small.complete(new Array(17).fill(5), { maxTokens: 1 })).rejects.toMatchObject({ code: 'CONTEXT_FULL' });
    small.dispose();
  });

  it('takes any integer seed, negative ones too', async () => {
    const a = await model.complete('Hello', { maxTokens: 6, temperature: 20, topK: 0, seed: -7 });
    const b = await model.complete('Hello', { maxTokens: 6, temperature: 20, topK: 0, seed: -7 });
    expect(b.tokens).toEqual(a.tokens);
  });

  it('raises every caller error at the call, before any token is produced', () => {
    const refused = (prompt: string | number[], options: Parameters<Model['generate']>[1], error: RegExp | object) => {
      // The call itself throws: nothing is iterated, so no token can have been produced.
      expect(() => model.generate(prompt, options)).toThrow(error as RegExp);
    };
    refused('x', { temperature: -1 }, InvalidArgumentError);
    refused('x', { stop: 'User:' as unknown as string[] }, /array/);
    refused('x', { seed: 1.5 }, /seed/);
    refused('x', { maxTokens: -1 }, /maxTokens/);
    refused('x', { decode: { mode: 'exact' } }, /recycle head/);
    refused('x', { decode: { mode: 'sideways' as 'off' } }, /decode mode/);
    refused('x', { logprobs: 21 }, /logprobs/);
    refused('x', { logprobs: 1.5 }, /logprobs/);
    refused([model.info.vocabSize], {}, /out of range/);
    refused([-1], {}, /out of range/);
    refused([1.5], {}, /out of range/);
    refused([], {}, /empty/);
    const long = new Array<number>(model.info.contextLength + 1).fill(5);
    refused(long, {}, ContextFullError);
    try {
      model.generate(long);
    } catch (error) {
      expect(error).toMatchObject({ code: 'CONTEXT_FULL', promptTokens: model.info.contextLength + 1, contextLength: model.info.contextLength });
    }
  });

  it('gives typed errors for bad arguments', async () => {
    await expect(model.complete([model.info.vocabSize], { maxTokens: 1 })).rejects.toThrow(InvalidArgumentError);
    await expect(model.complete([], { maxTokens: 1 })).rejects.toThrow(/empty/);
    await expect(model.complete('x', { maxTokens: -1 })).rejects.toThrow(/maxTokens/);
    await expect(model.complete('x', { temperature: Number.NaN })).rejects.toThrow(/temperature/);
    await expect(model.complete('x', { decode: { mode: 'exact' } })).rejects.toThrow(/recycle head/);
  });
});

describe('evaluate', () => {
  it('gives every position the logits that greedy decoding follows', async () => {
    const prompt = model.tokenize('The lighthouse');
    const { tokens } = await model.complete(prompt, { maxTokens: 5, temperature: 0 });
    const rows = await model.evaluate([...prompt, ...tokens.slice(0, -1)]);
    expect(rows).toHaveLength(prompt.length + 4);
    const argmax = (r: Float32Array) => r.indexOf(Math.max(...r));
    expect(rows.slice(prompt.length - 1).map(argmax)).toEqual(tokens);
  });
});

describe('dispose', () => {
  it('makes later calls fail with DISPOSED, at the call', async () => {
    const m = await loadModel(path);
    m.dispose();
    await expect(m.complete('x', { maxTokens: 1 })).rejects.toMatchObject({ code: 'DISPOSED' });
    await expect(m.evaluate([1])).rejects.toBeInstanceOf(RecycleGPTError);
    expect(() => m.generate('x', { maxTokens: 1 })).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
  });

  it('ends a stream that waited for its turn with DISPOSED, the stats included', async () => {
    const m = await loadModel(path);
    const running = m.complete('x', { maxTokens: 4 });
    const waiting = m.generate('x', { maxTokens: 1 });
    const iterated = (async () => { for await (const _ of waiting); })();
    m.dispose();
    await running.catch(() => {});
    await expect(iterated).rejects.toMatchObject({ code: 'DISPOSED' });
    await expect(waiting.stats).rejects.toMatchObject({ code: 'DISPOSED' });
  });
});

describe('stats', () => {
  it('count the prompt tokens reused from the cache, and rate the prefill by the tokens it ran', async () => {
    const fresh = await loadModel(path);
    const first = fresh.tokenize('A B C D E F');
    const a = await fresh.complete(first, { maxTokens: 1, temperature: 0 });
    expect(a.stats.reusedPromptTokens).toBe(0);
    expect(a.stats.timing).toBe('measured');
    const longer = [...first, ...fresh.tokenize(' G H', { addSpecial: false })];
    const b = await fresh.complete(longer, { maxTokens: 1, temperature: 0 });
    expect(b.stats).toMatchObject({ promptTokens: longer.length, reusedPromptTokens: first.length });
    expect(b.stats.prefillTokensPerSecond).toBeCloseTo(((longer.length - first.length) * 1000) / b.stats.prefillMs, 6);
    fresh.dispose();
  });

  it('settle as an abort when the caller stops iterating', async () => {
    const stream = model.generate('Once', { maxTokens: 50, temperature: 0 });
    let n = 0;
    for await (const _ of stream) if (++n === 2) break;
    const stats = await stream.stats;
    expect(stats.finishReason).toBe('abort');
    expect(stats.generatedTokens).toBeLessThanOrEqual(3);
  });
});
