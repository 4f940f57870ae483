/**
 * The drafting cost model: what it counts of a model's files, and adaptive decoding judged by it where the clock stands
 * still (performance.now() frozen, as in production Workers).
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decode } from '../generate.js';
import { readGGUFHeader } from '../gguf/load.js';
import { loadModel, openContext } from '../model.js';
import type { GenerationStats } from '../types.js';
import { BYTE_COST, MAC_COST, MODEL_POSITION, modeledDraftCost } from './cost-model.js';
import { draftingPays } from './modes.js';

const demo = (file: string) => fileURLToPath(new URL(`../../../models/demo/${file}`, import.meta.url));
const PROMPT = 'The function returns';

describe('the counted costs', () => {
  it('count each matrix once (the tied embedding as the output matrix), attention at MODEL_POSITION, and a shortlist share of the output', async () => {
    const { context } = await openContext(demo('demo-q8_0.gguf'), { recycle: demo('demo-recycle.gguf'), recycleShortlist: false, sequences: 1 });
    const [base, head] = await Promise.all([readGGUFHeader(demo('demo-q8_0.gguf')), readGGUFHeader(demo('demo-recycle.gguf'))]);
    const matrices = (tensors: typeof base.tensors) => tensors.filter((t) => t.dims.length === 2);
    // The demo: dim 256, 6 layers of 8 heads over 4 KV heads of 32, a widened f16 cache (4 bytes a value); its head, one such layer.
    const attention = (layers: number) => ({ bytes: layers * MODEL_POSITION * 2 * 4 * 32 * 4, macs: layers * MODEL_POSITION * 2 * 8 * 32 * 2 });
    const embd = base.tensors.find((t) => t.name === 'token_embd.weight')!;
    const bytes = (tensors: typeof base.tensors) => tensors.reduce((sum, t) => sum + t.byteSize, 0);
    const values = (tensors: typeof base.tensors) => tensors.reduce((sum, t) => sum + t.dims[0]! * t.dims[1]!, 0);
    expect(matrices(base.tensors).every((t) => t.type === 8)).toBe(true); // Q8_0: one multiply-add costs 1
    expect(context.draftCounts!.base).toEqual({ bytes: bytes(matrices(base.tensors)) + attention(6).bytes, macs: values(matrices(base.tensors)) + attention(6).macs });
    const headMatrices = matrices(head.tensors);
    expect(context.draftCounts!.head.bytes).toBeCloseTo(bytes(headMatrices) + embd.byteSize + attention(1).bytes, 6);
    // The demo head's file lists 1024 of the 4096 tokens: by default it scores those.
    const short = await openContext(demo('demo-q8_0.gguf'), { recycle: demo('demo-recycle.gguf'), sequences: 1 });
    expect(short.info.recycleShortlist).toBe(1024);
    expect(short.context.draftCounts!.head.bytes).toBeCloseTo(context.draftCounts!.head.bytes - (3 / 4) * embd.byteSize, 6);
    expect(short.context.draftCounts!.base).toEqual(context.draftCounts!.base);
    short.context.llama.free();
    // Without a head (grammar drafts need none) the base is counted alone.
    const headless = await openContext(demo('demo-q8_0.gguf'), { sequences: 1 });
    expect(headless.context.draftCounts).toEqual({ base: context.draftCounts!.base, head: { bytes: 0, macs: 0 } });
    headless.context.llama.free();
    context.llama.free();
  });

  it('give t(k)/t(1) from bytes streamed once per pass and multiply-adds per token', () => {
    const counts = { base: { bytes: 1000, macs: 2000 }, head: { bytes: 100, macs: 300 } };
    const one = BYTE_COST * 1000 + 2000;
    expect(modeledDraftCost(counts, 1)).toEqual({ pass: (BYTE_COST * 1000 + 2 * 2000) / one, head: (BYTE_COST * 100 + 300) / one, source: 'modeled' });
    expect(modeledDraftCost(counts, 3).pass).toBeCloseTo((BYTE_COST * 1000 + 4 * 2000) / one, 12);
    expect(MAC_COST.Q8_0).toBe(1);
  });
});

describe('adaptive drafting with the clock standing still', () => {
  afterEach(() => vi.restoreAllMocks());

  async function generate(mode: 'exact' | 'chain', frozen: boolean) {
    const model = await loadModel(demo('demo-q8_0.gguf'), { recycle: demo('demo-recycle.gguf') });
    if (frozen) vi.spyOn(performance, 'now').mockReturnValue(1000);
    const out = await model.complete(PROMPT, { maxTokens: 40, temperature: 0, decode: { mode } });
    vi.restoreAllMocks();
    model.dispose();
    return out;
  }

  it("judges drafting by the cost model, says so in the stats, and keeps the output", async () => {
    const model = await loadModel(demo('demo-q8_0.gguf'));
    const off = await model.complete(PROMPT, { maxTokens: 40, temperature: 0 });
    model.dispose();
    const { context } = await openContext(demo('demo-q8_0.gguf'), { recycle: demo('demo-recycle.gguf') });
    const counts = context.draftCounts!;
    context.llama.free();
    for (const mode of ['exact', 'chain'] as const) {
      const drafts = mode === 'chain' ? 3 : 1;
      const stats: GenerationStats = (await generate(mode, true)).stats;
      expect(stats.timing).toBe('unmeasured');
      expect(stats.draftCost).toBe('modeled');
      // On this engine the demo's 2-token pass costs ~1.7 passes: drafting never pays, even if every guess were kept.
      const cost = modeledDraftCost(counts, drafts);
      expect(draftingPays(cost, drafts, drafts + 1)).toBe(false);
      expect(stats.draftingStopped).toBe(true);
      expect(stats.proposed).toBeLessThanOrEqual(4 * drafts); // judged after 4 rounds
      expect((await generate(mode, true)).tokens).toEqual(off.tokens);
      expect((await generate(mode, false)).stats.draftCost).toBe('measured');
    }
  });

  it('judges jump-forward drafts without a head by the same model', async () => {
    const model = await loadModel(demo('demo-q8_0.gguf'), { sequences: 1 });
    const responseFormat = { type: 'json_schema' as const, schema: { type: 'object', properties: { name: { type: 'string' }, count: { type: 'integer' } }, required: ['name', 'count'] } };
    const run = (adaptive: boolean) => model.complete(PROMPT, { maxTokens: 40, temperature: 0, responseFormat, decode: { mode: 'off', adaptive } });
    const all = await run(false);
    vi.spyOn(performance, 'now').mockReturnValue(1000);
    const judged = await run(true);
    vi.restoreAllMocks();
    expect(judged.tokens).toEqual(all.tokens);
    expect(judged.stats).toMatchObject({ timing: 'unmeasured', draftCost: 'modeled' });
    expect(all.stats.draftCost).toBeUndefined();
    // At the demo's shape a 2-token pass costs ~1.7 (modeled): dictated drafts pay only where nearly all are kept.
    expect(all.stats.grammarDrafted).toBeGreaterThan(0);
    expect(judged.stats.grammarDrafted).toBeLessThanOrEqual(all.stats.grammarDrafted!);
    model.dispose();
  });

  it('keeps drafting where the model says a round pays', async () => {
    const { context } = await openContext(demo('demo-q8_0.gguf'), { recycle: demo('demo-recycle.gguf') });
    // A backend where passes stream far more than they compute (a memory-bound model): a 2-token pass costs about one.
    context.draftCounts = { base: { bytes: 1e9, macs: 1e6 }, head: { bytes: 1e7, macs: 1e4 } };
    vi.spyOn(performance, 'now').mockReturnValue(1000);
    let stats: GenerationStats | undefined;
    for await (const _ of decode(context, context.tokenizer.encode(PROMPT), { maxTokens: 40, temperature: 0, decode: { mode: 'exact' } }, (s) => (stats = s)));
    expect(stats!.draftCost).toBe('modeled');
    expect(stats!.draftingStopped).toBeUndefined();
    expect(stats!.proposed).toBeGreaterThan(10);
    context.llama.free();
  });
});
