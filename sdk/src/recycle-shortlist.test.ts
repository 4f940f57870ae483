/**
 * A recycle head scoring a shortlist (LoadOptions.recycleShortlist): the head's logits are those of the full head at
 * the listed tokens, its guesses come from the list only, and `exact`/`chain` still decode exactly as `off` does.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildHeadGGUF, COPY_HEAD } from '../../test/fixtures/recycle-head.js';
import { withShortlist } from '../../training/shortlist.js';
import { GGUFError, InvalidArgumentError } from './errors.js';
import { readGGUFHeader } from './gguf/load.js';
import { loadModel, openContext } from './model.js';
import { recycleShortlist } from './recycle.js';
import type { DecodeOptions, Model } from './types.js';

const demo = (file: string) => fileURLToPath(new URL(`../../models/demo/${file}`, import.meta.url));
const PROMPTS = ['The function returns', 'A hacker is a person who', 'To install the package, run'];
const SHORT = 32;

/** Greedy tokens, and those the head guessed and the full pass kept. */
async function decodeWith(model: Model, prompt: string, decode: DecodeOptions) {
  const tokens: number[] = [];
  const recycled: number[] = [];
  for await (const t of model.generate(prompt, { maxTokens: 40, temperature: 0, decode })) {
    tokens.push(t.id);
    if (t.source === 'recycled') recycled.push(t.id);
  }
  return { tokens, recycled };
}

describe('a recycle head scoring a shortlist', () => {
  it("scores the head file's list by default, or its first n; exact and chain decode as off, guessing listed tokens only", async () => {
    const list = recycleShortlist(await readGGUFHeader(demo('demo-recycle.gguf')), 4096, undefined)!;
    const full = await loadModel(demo('demo-q8_0.gguf'), { recycle: demo('demo-recycle.gguf'), recycleShortlist: false, sequences: 1 });
    const byDefault = await loadModel(demo('demo-q8_0.gguf'), { recycle: demo('demo-recycle.gguf'), sequences: 1 });
    const short = await loadModel(demo('demo-q8_0.gguf'), { recycle: demo('demo-recycle.gguf'), recycleShortlist: SHORT, sequences: 1 });
    expect([full.info.recycleShortlist, byDefault.info.recycleShortlist, short.info.recycleShortlist]).toEqual([undefined, list.length, SHORT]);
    const listed = new Set(list.slice(0, SHORT));
    const outside = { full: 0, short: 0 };
    const shortKept = new Set<number>();
    for (const prompt of PROMPTS) {
      const off = await decodeWith(full, prompt, { mode: 'off' });
      for (const decode of [{ mode: 'exact', adaptive: false }, { mode: 'chain', draftLength: 3, adaptive: false }] as const) {
        const all = await decodeWith(full, prompt, decode);
        const some = await decodeWith(short, prompt, decode);
        expect(all.tokens).toEqual(off.tokens);
        expect(some.tokens).toEqual(off.tokens);
        expect((await decodeWith(byDefault, prompt, decode)).tokens).toEqual(off.tokens);
        outside.full += all.recycled.filter((id) => !listed.has(id)).length;
        outside.short += some.recycled.filter((id) => !listed.has(id)).length;
        some.recycled.forEach((id) => shortKept.add(id));
      }
    }
    // The whole-vocabulary head does guess (and get kept) tokens past the first SHORT: with them, the head never does.
    expect(outside.full).toBeGreaterThan(0);
    expect(outside.short).toBe(0);
    // Several listed tokens were guessed and kept (a head guessing list positions as ids would keep almost none).
    expect(shortKept.size).toBeGreaterThan(3);
    for (const model of [full, byDefault, short]) model.dispose();
  });

  it('drafts under a responseFormat from a 16-token list (most tokens the format allows are off it), with the output of off', async () => {
    const model = await loadModel(demo('demo-q8_0.gguf'), { recycle: demo('demo-recycle.gguf'), recycleShortlist: 16, sequences: 1 });
    const responseFormat = { type: 'json_schema' as const, schema: { type: 'object', properties: { name: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } } } };
    const options = { maxTokens: 40, temperature: 0, responseFormat };
    const off = await model.complete(PROMPTS[0]!, options);
    for (const decode of [{ mode: 'exact', adaptive: false, jumpForward: false }, { mode: 'chain', draftLength: 3, adaptive: false }] as const) {
      const drafted = await model.complete(PROMPTS[0]!, { ...options, decode });
      expect(drafted.tokens).toEqual(off.tokens);
      expect(drafted.stats.proposed).toBeGreaterThan(0);
    }
    model.dispose();
  });

  it("gives the full head's logits at the listed tokens and -Infinity elsewhere, the argmax as a token id", async () => {
    const open = (recycleShortlist: number | false) => openContext(demo('demo-q8_0.gguf'), { recycle: demo('demo-recycle.gguf'), recycleShortlist, sequences: 1 });
    const [full, short] = [await open(false), await open(64)];
    const list = recycleShortlist(await readGGUFHeader(demo('demo-recycle.gguf')), 4096, 64)!;
    const ids = full.context.tokenizer.encode('The function returns a list');
    const rows: Float32Array[] = [];
    const picks: number[] = [];
    for (const { context } of [full, short]) {
      context.llama.forward(ids, 0, 0);
      // Head rows 1…: base hidden row r-1 with token r.
      context.llama.recycleForward('base', 0, ids.slice(1), 1, ids.length - 2);
      rows.push(context.llama.recycleLogits(0).slice());
      picks.push(context.llama.recycleArgmax(0));
    }
    const [whole, listedOnly] = rows as [Float32Array, Float32Array];
    expect(listedOnly).toHaveLength(4096);
    let best = list[0]!;
    for (let id = 0; id < 4096; id++) {
      if (list.includes(id)) expect(listedOnly[id]).toBe(whole[id]);
      else expect(listedOnly[id]).toBe(-Infinity);
    }
    for (const id of list) if (whole[id]! > whole[best]!) best = id;
    expect(picks[1]).toBe(best);
    full.context.llama.free();
    short.context.llama.free();
  });

  it('refuses a bad recycleShortlist, a count for a head that lists nothing, and a list with ids past the vocabulary', async () => {
    const load = (recycle: string | Uint8Array, recycleShortlist?: number | false) => loadModel(demo('demo-q8_0.gguf'), { recycle, recycleShortlist, sequences: 1 });
    for (const bad of [0, -1, 2.5, Number.NaN]) {
      await expect(load(demo('demo-recycle.gguf'), bad)).rejects.toThrow(InvalidArgumentError);
    }
    await expect(loadModel(demo('demo-q8_0.gguf'), { recycleShortlist: 8 })).rejects.toThrow(/give the `recycle` option too/);
    const unlisted = buildHeadGGUF(demo('demo-q8_0.gguf'), COPY_HEAD);
    await expect(load(unlisted, 16)).rejects.toThrow(/lists no shortlist \('recycle.shortlist'\); add one with training\/shortlist.ts/);
    for (const keep of [undefined, false] as const) {
      const model = await load(unlisted, keep);
      expect(model.info.recycleShortlist).toBeUndefined();
      model.dispose();
    }
    await expect(load(withShortlist(unlisted, [1, 4096]))).rejects.toThrow(GGUFError);
    // More than listed keeps the whole list.
    const model = await load(withShortlist(unlisted, [7, 3, 5]), 10);
    expect(model.info.recycleShortlist).toBe(3);
    model.dispose();
  });
});
