/**
 * JSON-mode decoding speed (issue #13): `npx tsx bench/json/run.ts`, or `npm run bench -- --json-only`. For each
 * model, decode tokens/s of constrained generation in each decode mode, with and without jump-forward, over
 * unconstrained `off`; then what the grammar costs per token (mask + masked pick) at 49k and 151k vocabularies next
 * to a decode step. Prints markdown; `--write` (implied by `--json-only`) also rewrites the tables in
 * bench/json/README.md. Asserts nothing.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { qwenVocab, sdkTokenizer } from '../grammar/vocabularies.js';
import { OutputGrammar } from '../../sdk/src/decode/grammar.js';
import { compileConstraint, type Constraint, type JsonSchema, type ResponseFormat } from '../../sdk/src/grammar/index.js';
import { loadModel } from '../../sdk/src/node.js';
import { openContext } from '../../sdk/src/model.js';
import { Sampler } from '../../sdk/src/sampler.js';
import type { Tokenizer } from '../../sdk/src/tokenizer/types.js';
import type { GenerateOptions, GenerationStats, Model } from '../../sdk/src/types.js';
import { buildModelGGUF, specName, type ModelSpec } from '../../test/fixtures/models.js';
import { buildHeadGGUF, type HeadSpec } from '../../test/fixtures/recycle-head.js';

const CACHE_DIR = fileURLToPath(new URL('../.cache/', import.meta.url));
const demo = (file: string) => fileURLToPath(new URL(`../../models/demo/${file}`, import.meta.url));

/** An API-style record: nested object, enum, array with min/max items, numbers with ranges, a pattern, optional keys. */
export const SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 24 },
    version: { type: 'string', pattern: '^[0-9]\\.[0-9]{1,2}$' },
    status: { enum: ['stable', 'beta', 'deprecated'] },
    downloads: { type: 'integer', minimum: 0, maximum: 1000000 },
    rating: { type: 'number', minimum: 0, maximum: 5 },
    license: { type: 'string', maxLength: 12 },
    author: { type: 'object', properties: { name: { type: 'string', maxLength: 20 }, email: { type: 'string', maxLength: 24 } }, required: ['name'] },
    keywords: { type: 'array', items: { type: 'string', maxLength: 12 }, minItems: 1, maxItems: 4 },
    typed: { type: 'boolean' },
  },
  required: ['name', 'version', 'status', 'downloads', 'rating', 'license', 'author', 'keywords', 'typed'],
};
const FORMAT: ResponseFormat = { type: 'json_schema', schema: SCHEMA };

const PROMPTS = ['The package metadata as JSON:', 'Describe the module in JSON.', 'A summary of the library, as a JSON object:'];
const MAX_TOKENS = 200;
/** Interleaved rounds; each row keeps its fastest. */
const ROUNDS = 3;

interface Row {
  name: string;
  options: GenerateOptions;
  /** Verified: its output must equal constrained `off`'s. */
  verified: boolean;
}

const json = (decode: GenerateOptions['decode']): GenerateOptions => ({ responseFormat: FORMAT, decode });
// Defaults are adaptive (drafting stops, or grammar drafts are cut, where they do not pay on this backend); the
// "always drafting" rows show what verified drafting itself costs and yields.
const ROWS: Row[] = [
  { name: 'off, unconstrained', options: { decode: { mode: 'off' } }, verified: false },
  { name: 'off', options: json({ mode: 'off', jumpForward: false }), verified: true },
  { name: 'off + jump-forward', options: json({ mode: 'off' }), verified: true },
  { name: 'off + jump-forward, always drafting', options: json({ mode: 'off', adaptive: false }), verified: true },
  { name: 'exact, always drafting', options: json({ mode: 'exact', adaptive: false, jumpForward: false }), verified: true },
  { name: 'exact + jump-forward', options: json({ mode: 'exact' }), verified: true },
  { name: 'exact + jump-forward, always drafting', options: json({ mode: 'exact', adaptive: false }), verified: true },
  { name: 'fast', options: json({ mode: 'fast', jumpForward: false }), verified: false },
  { name: 'fast + jump-forward', options: json({ mode: 'fast' }), verified: false },
];

interface BenchModel {
  name: string;
  path: () => string;
  head: () => string | Uint8Array;
  contextLength: number;
}

/** SmolLM2-135M's shape (random weights, tied output) with the SmolLM2-sized 49k vocabulary. */
const SMOL_135M: ModelSpec = { dim: 576, layers: 30, heads: 9, kvHeads: 3, ffn: 1536, vocab: 'smollm', type: 'Q8_0', tiedOutput: true, ctx: 2048, seed: 135 };
/** A copy head (it guesses the base's own next token for the position before): a stand-in, as no head is trained for random weights. */
const SMOL_HEAD: HeadSpec = { kind: 'copy', layers: 1, heads: 9, kvHeads: 3, ffn: 1536, type: 'Q8_0', seed: 1 };

const MODELS: BenchModel[] = [
  { name: 'demo-q8_0 (trained, 5.5M, 4k vocab) + its head', path: () => demo('demo-q8_0.gguf'), head: () => demo('demo-recycle.gguf'), contextLength: 256 },
  { name: 'SmolLM2-135M shape, Q8_0, random, 49k vocab + copy head', path: () => cached(SMOL_135M), head: () => buildHeadGGUF(cached(SMOL_135M), SMOL_HEAD), contextLength: 512 },
];

/** A fixture model cached under bench/.cache/ (built on first use: a minute for the 135M one). */
function cached(spec: ModelSpec): string {
  const path = `${CACHE_DIR}${specName(spec)}.gguf`;
  if (existsSync(path)) return path;
  mkdirSync(CACHE_DIR, { recursive: true });
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, buildModelGGUF(spec));
  renameSync(partial, path);
  return path;
}

export interface RowResult {
  row: string;
  /** Wall clock, from the stats. */
  decodeTokensPerSecond: number;
  /** Process CPU time, whole generations: what the ratio is computed from. */
  cpuTokensPerSecond: number;
  overUnconstrained: number;
  tokensPerPass: number;
  /** Head drafts kept / proposed; null without head drafts. */
  headAcceptance: number | null;
  grammarDrafted: number;
  grammarKept: number;
  valid: string;
  /** Verified rows: output equal to constrained off's on every prompt. */
  identical: boolean | null;
  meanTokens: number;
}

export interface ModelResult {
  model: string;
  rows: RowResult[];
}

/**
 * Every prompt once. `rate`: tokens after each first one per second of decoding (the stats' wall clock); `cpuRate`:
 * all generated tokens per second of process CPU time over the whole generation (prefill of a short prompt included),
 * which a shared machine's load disturbs far less.
 */
async function runRow(model: Model, row: Row) {
  const stats: GenerationStats[] = [];
  const outputs: number[][] = [];
  let valid = 0;
  let cpuMs = 0;
  for (const prompt of PROMPTS) {
    const t0 = cpuNow();
    const out = await model.complete(prompt, { maxTokens: MAX_TOKENS, temperature: 0, ...row.options });
    cpuMs += cpuNow() - t0;
    stats.push(out.stats);
    outputs.push(out.tokens);
    try {
      JSON.parse(out.text);
      valid++;
    } catch {
      // counted as invalid
    }
  }
  const decoded = stats.reduce((a, s) => a + s.generatedTokens - 1, 0);
  const ms = stats.reduce((a, s) => a + s.decodeMs, 0);
  const generated = stats.reduce((a, s) => a + s.generatedTokens, 0);
  return { rate: (decoded * 1000) / ms, cpuRate: (generated * 1000) / cpuMs, stats, outputs, valid };
}

/**
 * Each row on a model loaded for it alone, so no row inherits another's judgement of what drafting yields; rounds
 * interleave the rows (a shared machine's load shifts over minutes), and each row keeps its fastest round.
 */
export async function benchModel(spec: BenchModel): Promise<ModelResult> {
  const models: Model[] = [];
  try {
    for (const row of ROWS) {
      const model = await loadModel(spec.path(), { recycle: spec.head(), contextLength: spec.contextLength });
      models.push(model);
      await model.complete(PROMPTS[0]!, { maxTokens: MAX_TOKENS, temperature: 0, ...row.options }); // warm-up: compiles the grammar, judges the costs
    }
    const best: Array<Awaited<ReturnType<typeof runRow>> | undefined> = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (const [i, row] of ROWS.entries()) {
        const round = await runRow(models[i]!, row);
        if (!best[i] || round.cpuRate > best[i]!.cpuRate) best[i] = round;
      }
      console.log(`  round ${r + 1}: ${best.map((b) => b!.cpuRate.toFixed(1)).join(' ')} tok/s (CPU time)`);
    }
    const key = (i: number) => JSON.stringify(best[i]!.outputs);
    const reference = key(ROWS.findIndex((row) => row.name === 'off'));
    const base = best[0]!.cpuRate;
    const rows = ROWS.map((row, i): RowResult => {
      const b = best[i]!;
      const sum = (pick: (s: GenerationStats) => number) => b.stats.reduce((a, s) => a + pick(s), 0);
      return {
        row: row.name,
        decodeTokensPerSecond: b.rate,
        cpuTokensPerSecond: b.cpuRate,
        overUnconstrained: b.cpuRate / base,
        tokensPerPass: sum((s) => s.generatedTokens - 1) / sum((s) => s.fullPasses),
        headAcceptance: sum((s) => s.proposed) > 0 ? sum((s) => s.recycled) / sum((s) => s.proposed) : null,
        grammarDrafted: sum((s) => s.grammarDrafted ?? 0),
        grammarKept: sum((s) => s.grammarKept ?? 0),
        valid: row.options.responseFormat ? `${b.valid}/${PROMPTS.length}` : '–',
        identical: row.verified ? key(i) === reference : null,
        meanTokens: sum((s) => s.generatedTokens) / PROMPTS.length,
      };
    });
    return { model: spec.name, rows };
  } finally {
    for (const model of models) model.dispose();
  }
}

// ── The grammar's cost per token, next to a decode step ──

/** A valid output for SCHEMA, pretty-printed as models tend to write it. */
const SAMPLE_OUTPUT = JSON.stringify(
  {
    name: 'left-pad',
    version: '1.3',
    status: 'stable',
    downloads: 2400000 % 1000000,
    rating: 4.5,
    license: 'MIT',
    author: { name: 'Azer K', email: 'azer@example.com' },
    keywords: ['string', 'pad', 'left'],
    typed: false,
  },
  null,
  2,
);

/** Process CPU time in ms: on a shared machine the wall clock also counts waiting for a core. */
function cpuNow(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

export interface MaskCost {
  vocab: string;
  vocabSize: number;
  tokens: number;
  /** Vocabulary preparation (token trie; once per tokenizer) and the schema's compilation (once per schema), ms. */
  vocabPrepMs: number;
  compileMs: number;
  /**
   * Mask + advance per token along the output, µs: the first pass over a fresh compile (the second such, so that the
   * JIT has compiled the grammar code) and a second pass over the same compile, with a
   * generous budget (maxTokens 4× the output); and a first pass where maxTokens is the output's length, so the
   * budget rule checks every pick.
   */
  maskColdUs: number;
  maskWarmUs: number;
  worstColdMs: number;
  tightColdUs: number;
  /** Picking from a random logits row: greedy and top-k 40 sampling, without and with the mask, µs. */
  greedyUs: number;
  greedyMaskedUs: number;
  sampleUs: number;
  sampleMaskedUs: number;
}

export function maskCost(name: string, makeTokenizer: () => Tokenizer): MaskCost {
  const tokenizer = makeTokenizer();
  let t = cpuNow();
  compileConstraint({ type: 'json_schema', schema: { type: 'null' } }, tokenizer); // builds the trie
  const vocabPrepMs = cpuNow() - t;
  const ids = tokenizer.encode(SAMPLE_OUTPUT, { addSpecial: false });
  const compile = () => {
    // A schema object of its own each time, so the compiled-format cache does not answer.
    const start = cpuNow();
    const constraint = compileConstraint({ type: 'json_schema', schema: structuredClone(SCHEMA), name: `${Math.random()}` }, tokenizer)!;
    return { constraint, ms: cpuNow() - start };
  };
  const pass = (constraint: Constraint, maxTokens: number) => {
    const grammar = new OutputGrammar(constraint, maxTokens);
    const masks: Uint32Array[] = [];
    let worst = 0;
    const start = cpuNow();
    for (const id of ids) {
      const t0 = cpuNow();
      masks.push(grammar.next());
      grammar.accept(id);
      worst = Math.max(worst, cpuNow() - t0);
    }
    if (!grammar.state.canEnd()) throw new Error('the sample output does not complete the schema');
    return { us: ((cpuNow() - start) * 1000) / ids.length, worst, masks };
  };
  // The first compile and pass also pay for the JIT compiling the grammar code: the second fresh one is reported.
  pass(compile().constraint, ids.length * 4);
  const fresh = compile();
  const cold = pass(fresh.constraint, ids.length * 4);
  const warm = pass(fresh.constraint, ids.length * 4);
  const tight = pass(compile().constraint, ids.length + 1);
  const logits = Float32Array.from({ length: tokenizer.vocabSize }, (_, i) => Math.sin(i * 12.9898) * 4);
  const greedy = new Sampler({ temperature: 0 });
  const sampler = new Sampler({ temperature: 0.8, seed: 1 });
  const per = (run: (mask: Uint32Array) => void) => {
    for (let i = 0; i < 3; i++) for (const mask of warm.masks) run(mask);
    const t0 = cpuNow();
    for (const mask of warm.masks) run(mask);
    return ((cpuNow() - t0) * 1000) / warm.masks.length;
  };
  return {
    vocab: name,
    vocabSize: tokenizer.vocabSize,
    tokens: ids.length,
    vocabPrepMs,
    compileMs: fresh.ms,
    maskColdUs: cold.us,
    maskWarmUs: warm.us,
    worstColdMs: cold.worst,
    tightColdUs: tight.us,
    greedyUs: per(() => greedy.sample(logits, [])),
    greedyMaskedUs: per((mask) => greedy.sample(logits, [], mask)),
    sampleUs: per(() => sampler.sample(logits, [])),
    sampleMaskedUs: per((mask) => sampler.sample(logits, [], mask)),
  };
}

/** Median CPU ms of a 1-token decode step (full pass with logits) at position ~100. */
export async function decodeStepMs(path: string): Promise<number> {
  const { context } = await openContext(path, { contextLength: 256 });
  try {
    const ids = context.tokenizer.encode('The quick brown fox jumps over the lazy dog. '.repeat(12)).slice(0, 100);
    await context.prefill(ids);
    const times: number[] = [];
    for (let i = 0; i < 25; i++) {
      const t0 = cpuNow();
      await context.llama.forward([ids[i]!], 100, 0);
      if (i >= 5) times.push(cpuNow() - t0);
    }
    times.sort((a, b) => a - b);
    return times[times.length >> 1]!;
  } finally {
    context.llama.free();
  }
}

// ── Report ──

export function renderJson(models: ModelResult[], masks: MaskCost[], steps: Record<string, number>, machine: string): string {
  const lines = [
    `Machine: ${machine}. Greedy, ${PROMPTS.length} prompts, up to ${MAX_TOKENS} tokens, best of ${ROUNDS} interleaved rounds after a warm-up; schema: SCHEMA in bench/json/run.ts.`,
    '',
    '| model | row | tok/s (CPU time) | ÷ unconstrained off | decode tok/s (wall) | tokens/pass | head kept | grammar drafted → kept | valid JSON | = constrained off | mean tokens |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: | :---: | ---: |',
  ];
  for (const m of models) {
    for (const r of m.rows) {
      lines.push(
        `| ${m.model} | ${r.row} | ${r.cpuTokensPerSecond.toFixed(1)} | ${r.overUnconstrained.toFixed(2)}× | ${r.decodeTokensPerSecond.toFixed(1)} | ${r.tokensPerPass.toFixed(2)} | ` +
          `${r.headAcceptance === null ? '–' : `${(r.headAcceptance * 100).toFixed(0)}%`} | ${r.grammarDrafted ? `${r.grammarDrafted} → ${r.grammarKept}` : '–'} | ${r.valid} | ` +
          `${r.identical === null ? '–' : r.identical ? 'yes' : 'NO'} | ${r.meanTokens.toFixed(0)} |`,
      );
    }
  }
  lines.push(
    '',
    `The grammar's cost per token along a ${masks[0]?.tokens}-token output of the schema (mask with the budget rule + advance; picks from a random row), in process CPU time, next to a 1-token decode step:`,
    '',
    '| vocab | vocab prep ms | schema compile ms | mask µs/token cold | warm | worst cold ms | cold, budget checked at every pick | greedy pick µs: plain → masked | top-k 40 sample µs: plain → masked |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const c of masks) {
    lines.push(
      `| ${c.vocab} (${c.vocabSize}) | ${c.vocabPrepMs.toFixed(0)} | ${c.compileMs.toFixed(0)} | ${c.maskColdUs.toFixed(0)} | ${c.maskWarmUs.toFixed(1)} | ${c.worstColdMs.toFixed(1)} | ${c.tightColdUs.toFixed(0)} | ` +
        `${c.greedyUs.toFixed(0)} → ${c.greedyMaskedUs.toFixed(0)} | ${c.sampleUs.toFixed(0)} → ${c.sampleMaskedUs.toFixed(0)} |`,
    );
  }
  lines.push('', '| decode step (1 token at position 100, WASM, CPU time) | ms |', '| --- | ---: |');
  for (const [name, ms] of Object.entries(steps)) lines.push(`| ${name} | ${ms.toFixed(2)} |`);
  return lines.join('\n');
}

const README = fileURLToPath(new URL('./README.md', import.meta.url));
const BEGIN = '<!-- results:begin -->';
const END = '<!-- results:end -->';

export async function benchJson(): Promise<string> {
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, load ${load}, Node ${process.version}`;
  const models: ModelResult[] = [];
  for (const spec of MODELS) {
    console.log(`${spec.name} …`);
    models.push(await benchModel(spec));
  }
  console.log('mask cost …');
  const masks = [
    maskCost('SmolLM2-sized 49k', () => sdkTokenizer(qwenVocab(49_152))),
    maskCost('Qwen3 151k', () => sdkTokenizer(qwenVocab())),
  ];
  const steps = {
    'demo-q8_0 (4k vocab)': await decodeStepMs(demo('demo-q8_0.gguf')),
    'SmolLM2-135M shape Q8_0 (49k vocab)': await decodeStepMs(cached(SMOL_135M)),
  };
  return renderJson(models, masks, steps, machine);
}

/** Prints the tables; with `--write` (or from `npm run bench -- --json-only`) rewrites them in bench/json/README.md. */
export async function main(): Promise<void> {
  const table = await benchJson();
  console.log(`\n${table}\n`);
  if (process.argv.includes('--write') || process.argv.includes('--json-only')) {
    const readme = readFileSync(README, 'utf8');
    const at = readme.indexOf(BEGIN);
    const end = readme.indexOf(END);
    if (at < 0 || end < at) throw new Error(`bench/json/README.md lacks the ${BEGIN} … ${END} markers`);
    writeFileSync(README, `${readme.slice(0, at + BEGIN.length)}\n${table}\n${readme.slice(end)}`);
    console.log('rewrote the tables in bench/json/README.md');
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
