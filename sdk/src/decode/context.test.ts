/**
 * The prefix cache over several KV sequences: which sequence a prompt runs in (`chooseSequence`), and on the demo
 * model with its head, that interleaved conversations keep their prefixes, a shared prefix is copied, the least
 * recently used sequence is evicted, and every decode mode's output is what a fresh model gives.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { loadModel } from '../model.js';
import type { DecodeMode, LoadOptions, Model } from '../types.js';
import { chooseSequence } from './context.js';

const demo = (file: string) => fileURLToPath(new URL(`../../../models/demo/${file}`, import.meta.url));
const load = (options: LoadOptions = {}) => loadModel(demo('demo-q8_0.gguf'), { recycle: demo('demo-recycle.gguf'), ...options });

async function run(model: Model, ids: number[], mode: DecodeMode = 'off', maxTokens = 12) {
  const out = await model.complete(ids, { maxTokens, temperature: 0, decode: { mode, adaptive: false } });
  return { tokens: out.tokens, reused: out.stats.reusedPromptTokens };
}

describe('chooseSequence', () => {
  const seq = (tokens: number[], prompt: number, used: number) => ({ tokens, prompt, used });

  it('continues the sequence whose last prompt the new one keeps whole, the longest such', () => {
    const sequences = [seq([1, 2, 3, 4, 5], 3, 1), seq([1, 2, 3, 4, 5, 6, 7], 5, 2), seq([1, 9], 2, 3)];
    expect(chooseSequence(sequences, [1, 2, 3, 4, 5, 6, 8])).toEqual({ target: 1, source: 1 });
    // The answer re-tokenized differently still continues: the prompt before it is kept.
    expect(chooseSequence(sequences, [1, 2, 3, 7, 7])).toEqual({ target: 0, source: 0 });
  });

  it('starts a new branch in the least recently used sequence, from the longest prefix any sequence holds', () => {
    const sequences = [seq([1, 2, 3, 4], 4, 3), seq([5, 6], 2, 1), seq([1, 2, 7], 3, 2)];
    // Diverges inside sequence 0's prompt: sequence 1 (least recently used) takes it, copying [1, 2, 3] from 0.
    expect(chooseSequence(sequences, [1, 2, 3, 9])).toEqual({ target: 1, source: 0 });
    // A never-used sequence goes first; nothing shared means nothing copied.
    expect(chooseSequence([...sequences, seq([], 0, 0)], [8, 8])).toEqual({ target: 3, source: 3 });
  });

  it('with one sequence, always reuses it', () => {
    expect(chooseSequence([seq([1, 2, 3], 3, 5)], [1, 4])).toEqual({ target: 0, source: 0 });
    expect(chooseSequence([seq([1, 2, 3], 3, 5)], [7])).toEqual({ target: 0, source: 0 });
  });
});

describe('KV sequences on the demo model', () => {
  it('interleaved conversations A, B, A: turn 2 of A reuses all of turn 1 with two sequences, not with one', async () => {
    for (const sequences of [2, 1]) {
      const model = await load({ sequences });
      const a1 = model.tokenize('The function returns a list of');
      const b1 = model.tokenize('A hacker is a person who enjoys');
      const a = await run(model, a1);
      await run(model, b1);
      const a2 = [...a1, ...a.tokens, ...model.tokenize(' and then', { addSpecial: false })];
      const again = await run(model, a2);
      // The cache holds turn 1's prompt and answer but the last token, which never ran.
      if (sequences === 2) expect(again.reused).toBe(a1.length + a.tokens.length - 1);
      else expect(again.reused).toBeLessThanOrEqual(1); // only BOS is shared with B
      model.dispose();
    }
  });

  it('copies a shared prefix into a fresh sequence instead of evicting the conversation that holds it', async () => {
    const model = await load({ sequences: 2 });
    const system = model.tokenize('You are a helpful assistant. Answer briefly and precisely.');
    const a1 = [...system, ...model.tokenize(' Question: what is Python?', { addSpecial: false })];
    const b1 = [...system, ...model.tokenize(' Question: what is a hacker?', { addSpecial: false })];
    // Recycled decoding builds the head's rows too (a prefill builds again the one before its first new token); `fast`
    // output depends on them, so the copied base and head rows must be right.
    const a = await run(model, a1, 'fast');
    const b = await run(model, b1, 'fast');
    let shared = 0;
    while (a1[shared] === b1[shared]) shared++;
    expect(shared).toBeGreaterThan(system.length);
    expect(b.reused).toBe(shared - 1);
    const fresh = await load({ sequences: 1 });
    expect(b.tokens).toEqual((await run(fresh, b1, 'fast')).tokens);
    fresh.dispose();
    // A's own sequence, not the copy: all of A but the last tokens, whose head rows drafting had not built yet.
    const a2 = await run(model, [...a1, ...a.tokens], 'exact');
    expect(a2.reused).toBeGreaterThanOrEqual(a1.length + a.tokens.length - 3);
    model.dispose();
  });

  it('evicts the least recently used conversation', async () => {
    const model = await load({ sequences: 2 });
    const [a1, b1, c1] = ['The function returns', 'To install the package, run', 'In this tutorial we will'].map((t) => model.tokenize(t));
    const a = await run(model, a1!);
    const b = await run(model, b1!);
    const c = await run(model, c1!); // evicts A
    expect((await run(model, [...a1!, ...a.tokens])).reused).toBeLessThanOrEqual(1);
    // A took B's sequence, then the least recently used; C's is intact.
    expect((await run(model, [...c1!, ...c.tokens])).reused).toBe(c1!.length + c.tokens.length - 1);
    expect((await run(model, [...b1!, ...b.tokens])).reused).toBeLessThanOrEqual(1);
    model.dispose();
  });

  it('gives in every mode what a fresh model gives, across interleaved, copied and evicted sequences', async () => {
    const model = await load({ sequences: 2 });
    const shared = model.tokenize('Unlike other languages, Python');
    const prompts = [
      shared,
      model.tokenize('The following example shows how'),
      [...shared, ...model.tokenize(' uses indentation', { addSpecial: false })],
      model.tokenize('A hacker is a person who'),
    ];
    const history: number[][] = [];
    for (const [i, mode] of (['fast', 'exact', 'chain', 'off', 'fast', 'exact', 'fast', 'chain'] as const).entries()) {
      // Alternate new prompts with continuations of earlier ones (answer included).
      const ids = i < prompts.length ? prompts[i]! : [...history[i - prompts.length]!, ...model.tokenize(' so', { addSpecial: false })];
      const got = await run(model, ids, mode);
      const fresh = await load({ sequences: 1 });
      expect(got.tokens, `generation ${i} (${mode})`).toEqual((await run(fresh, ids, mode)).tokens);
      fresh.dispose();
      history.push([...ids, ...got.tokens]);
    }
    model.dispose();
  });

  it('says how many sequences it keeps and what each costs; refuses a bad count', async () => {
    const model = await load();
    // The demo's 6 layers × 256 positions × 4 KV heads × 32 at f16 is 0.75 MiB a sequence: the default 4 fit 32 MiB.
    expect(model.info.sequences).toBe(4);
    // Kept widened (4 bytes a value, 6 MiB in all); the head's one layer adds its own.
    const bytes = (layers: number) => 2 * layers * 256 * 4 * 32 * 4;
    expect(model.info.kvBytesPerSequence).toBe(bytes(6) + bytes(1));
    model.dispose();
    const plain = await loadModel(demo('demo-q8_0.gguf'), { sequences: 3 });
    expect([plain.info.sequences, plain.info.kvBytesPerSequence]).toEqual([3, bytes(6)]);
    plain.dispose();
    for (const sequences of [0, 1.5, 65]) {
      await expect(load({ sequences })).rejects.toThrow(InvalidArgumentError);
    }
    await expect(load({ sequences: 0 })).rejects.toThrow(/sequences must be an integer from 1 to 64, got 0/);
  });
});
