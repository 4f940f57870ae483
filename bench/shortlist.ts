/**
 * What a recycle head's shortlist (LoadOptions.recycleShortlist, training/shortlist.ts) costs in acceptance and saves in
 * time. For each size k of the head file's shortlist (and the whole vocabulary):
 *  - acceptance: in `exact` decoding (greedy, drafting always on) over the prompts below; and, given `--heldout`
 *    (a token file of training/encode.ts), teacher-forced on held-out text: how often the head's guess for x_{t+2}
 *    equals the full model's greedy pick, at every position;
 *  - cost: a head row over a 1-token base pass, process CPU time (fastest of ROUNDS, interleaved) and as the cost
 *    model counts it.
 *
 *   npx tsx bench/shortlist.ts [--base m.gguf --head h.gguf] [--heldout heldout.bin] [--sizes 256,1024] [--cost-only]
 *
 * Default: the demo model and its head. A 4096-token vocabulary says little about 49k or 151k ones: there the
 * output matrix is most of a head row, and rare tokens are many more.
 */
import '../sdk/src/node.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { countDraftCosts, MODEL_POSITION, modeledDraftCost } from '../sdk/src/decode/cost-model.js';
import { decode } from '../sdk/src/generate.js';
import { readGGUFHeader } from '../sdk/src/gguf/load.js';
import { openContext } from '../sdk/src/model.js';
import { decoderShape } from '../sdk/src/model-file.js';
import { recycleShortlist } from '../sdk/src/recycle.js';
import { PROMPTS as RECYCLE_PROMPTS } from './recycle.js';

const demo = (file: string) => fileURLToPath(new URL(`../models/demo/${file}`, import.meta.url));
const ROUNDS = Number(process.env.ROUNDS ?? 15);
const PROMPTS = [...RECYCLE_PROMPTS, 'The module provides', 'An exception is raised if'];
const DECODE_TOKENS = 96;
const WINDOW = 256;

const { values } = parseArgs({
  options: { base: { type: 'string' }, head: { type: 'string' }, heldout: { type: 'string' }, sizes: { type: 'string' }, 'cost-only': { type: 'boolean' } },
});
const basePath = values.base ?? demo('demo-q8_0.gguf');
const headPath = values.head ?? demo('demo-recycle.gguf');
const { context, info } = await openContext(basePath, { recycle: headPath, recycleShortlist: false, sequences: 1 });
const llama = context.llama as typeof context.llama & { recycleShortlist(ids: readonly number[] | undefined): void };
const vocab = info.vocabSize;
const [baseHeader, headHeader] = await Promise.all([readGGUFHeader(basePath), readGGUFHeader(headPath)]);
const ranked = recycleShortlist(headHeader, vocab, undefined);
const listed = ranked?.length ?? 0;
const sizes = (values.sizes ? values.sizes.split(',').map(Number) : [128, 256, 512, 1024, 2048, Math.ceil(vocab / 8)])
  .filter((k, i, all) => k > 0 && k <= listed && all.indexOf(k) === i)
  .sort((a, b) => a - b);
// Without a list in the file the shortlist rows are the first k ids: enough for timing, not for acceptance.
const rows = (k: number) => (ranked ?? Array.from({ length: vocab }, (_, i) => i)).slice(0, k);
const cases = [...(ranked ? sizes : [Math.ceil(vocab / 8)]), vocab];
const use = (k: number) => llama.recycleShortlist(k < vocab ? rows(k) : undefined);

console.log(`${info.name}: vocabulary ${vocab}, dim ${info.dim}; the head file lists ${listed} tokens.`);
console.log('| head scores | exact acceptance (decoding) | held-out acceptance (teacher-forced) | head row ÷ 1-token pass (CPU time) | modeled |');
console.log('| ---: | ---: | ---: | ---: | ---: |');
const heldout = values.heldout ? heldoutAcceptance(values.heldout) : undefined;
for (const k of cases) {
  use(k);
  const decoding = values['cost-only'] || !ranked ? undefined : await decodingAcceptance();
  const cost = headCost();
  const modeled = modeledDraftCost(countsFor(k), 1).head;
  const pct = (v: number | undefined) => (v === undefined ? '–' : `${(100 * v).toFixed(1)}%`);
  console.log(`| ${k === vocab ? `all ${vocab}` : k} | ${pct(decoding)} | ${pct(heldout?.get(k))} | ${cost.toFixed(3)} | ${modeled.toFixed(3)} |`);
}
llama.free();

/** Kept / proposed drafts of `exact` decoding over PROMPTS. */
async function decodingAcceptance(): Promise<number> {
  let proposed = 0;
  let kept = 0;
  for (const prompt of PROMPTS) {
    const options = { maxTokens: DECODE_TOKENS, temperature: 0, decode: { mode: 'exact' as const, adaptive: false } };
    for await (const _ of decode(context, context.tokenizer.encode(prompt), options, (s) => ((proposed += s.proposed), (kept += s.recycled))));
  }
  return kept / proposed;
}

/** Per size: how often the head's guess at a held-out position equals the full model's greedy pick there. */
function heldoutAcceptance(path: string): Map<number, number> {
  const bytes = readFileSync(path);
  const ids = Array.from(vocab <= 65536 ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1) : new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2));
  const hits = new Map(cases.map((k) => [k, 0]));
  let positions = 0;
  const batch = Math.min(llama.config.maxBatch, llama.recycleMaxBatch);
  for (let w = 0; w < ids.length; w += WINDOW) {
    const window = ids.slice(w, w + WINDOW);
    for (let start = 0; start < window.length; start += batch) {
      const chunk = window.slice(start, start + batch);
      llama.forward(chunk, start, 0);
      const picks = chunk.map((_, r) => llama.argmax(r));
      // Head row q (hidden q-1, token q) guesses x_{q+1}, which the base picks at row q.
      const tokens = chunk.slice(1);
      if (tokens.length === 0) continue;
      for (const k of cases) {
        use(k);
        llama.recycleForward('base', 0, tokens, start + 1, 0);
        tokens.forEach((_, i) => llama.recycleArgmax(i) === picks[i + 1] && hits.set(k, hits.get(k)! + 1));
      }
      positions += tokens.length;
    }
  }
  return new Map([...hits].map(([k, n]) => [k, n / positions]));
}

/** A head row's CPU time over a 1-token base pass's, both at MODEL_POSITION. */
function headCost(): number {
  const ids = Array.from({ length: MODEL_POSITION + 1 }, (_, i) => (i * 7 + 3) % vocab);
  llama.forward(ids.slice(0, 32), MODEL_POSITION - 32, 0);
  const reps = Math.max(1, Math.round(2e6 / info.parameters));
  const best = { pass: Infinity, head: Infinity };
  for (let r = 0; r < ROUNDS; r++) {
    for (const which of ['pass', 'head'] as const) {
      const start = process.cpuUsage();
      for (let i = 0; i < reps; i++) {
        if (which === 'pass') llama.forward([ids[MODEL_POSITION]!], MODEL_POSITION, 0);
        else llama.recycleForward('base', 0, [ids[MODEL_POSITION]!], MODEL_POSITION, 0);
      }
      const used = process.cpuUsage(start);
      best[which] = Math.min(best[which], (used.user + used.system) / reps);
    }
  }
  return best.head / best.pass;
}

/** The cost model's counts with the head scoring k tokens. */
function countsFor(k: number) {
  const { dim: _dim, trainedContextLength: _trained, ...head } = decoderShape(headHeader.metadata, 'recycle');
  const { contextLength, kvType } = llama.config;
  return countDraftCosts({ tensors: baseHeader.tensors, config: llama.config }, { tensors: headHeader.tensors, config: { ...head, contextLength, kvType }, outputRows: k });
}
