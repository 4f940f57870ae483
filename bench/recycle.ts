/**
 * Recycled decoding on the demo model (models/demo) with its recycle head: decode tokens/s of each mode
 * and its ratio to `off`, the acceptance rate, tokens per full pass, and where a decode step's time goes.
 */
import { fileURLToPath } from 'node:url';
import { openContext } from '../sdk/src/model.js';
import { loadModel, type DecodeMode, type GenerationStats, type Model } from '../sdk/src/node.js';
import { Sampler } from '../sdk/src/sampler.js';
import type { Tokenizer } from '../sdk/src/tokenizer/types.js';

const demo = (file: string) => fileURLToPath(new URL(`../models/demo/${file}`, import.meta.url));
export const RECYCLE_MODELS = ['demo-q8_0.gguf', 'demo-q4_0.gguf'];
const HEAD = 'demo-recycle.gguf';
const CONTEXT = 256;
const DECODE_TOKENS = 96;
/** Timed repetitions of each piece of a decode step on the demo model (its passes take well under a millisecond). */
const DEMO_REPS = 200;
/** The prompts the demo model is benched on. */
export const PROMPTS = [
  'The function returns',
  'To install the package, run',
  'A hacker is a person who',
  'In this tutorial we will',
  'The following example shows how',
  'Unlike other languages, Python',
];

interface ModeCase {
  name: string;
  decode: { mode: DecodeMode; draftLength?: number; adaptive?: boolean };
}

// exact and chain are adaptive by default (they stop drafting where it does not pay); the
// "always drafting" rows show what verified drafting itself costs on this backend.
const MODES: ModeCase[] = [
  { name: 'off', decode: { mode: 'off' } },
  { name: 'fast', decode: { mode: 'fast' } },
  { name: 'exact', decode: { mode: 'exact' } },
  { name: 'exact, always drafting', decode: { mode: 'exact', adaptive: false } },
  { name: 'chain k=2, always drafting', decode: { mode: 'chain', draftLength: 2, adaptive: false } },
  { name: 'chain k=3, always drafting', decode: { mode: 'chain', draftLength: 3, adaptive: false } },
];

export interface ModeResult {
  mode: string;
  decodeTokensPerSecond: number;
  overOff: number;
  tokensPerPass: number;
  /** Kept / proposed recycled tokens (fast keeps all of them unchecked); null when nothing was proposed. */
  acceptanceRate: number | null;
  /** Greedy output equal to `off`'s on every prompt. */
  identicalToOff: boolean;
}

/** Milliseconds of one piece of a 1-token decode step (medians). */
export interface StepCosts {
  fullPassMs: number;
  outputHeadMs: number;
  /** Attention over `position` cached tokens. */
  attentionMs: number;
  position: number;
  rest: number;
  headGuessMs: number;
  greedySampleMs: number;
  topKSampleMs: number;
  /** Forward of n tokens over a forward of 1, keyed by n. */
  batchRatio: Record<number, number>;
}

export interface RecycleReport {
  model: string;
  prompts: number;
  decodeTokens: number;
  /** Timed rounds of every prompt per mode; the best is reported. */
  rounds: number;
  modes: ModeResult[];
  step: StepCosts;
}

/** The decode modes on the demo model `file`, each the best of `rounds` timed rounds of every prompt after a warm-up one. */
export async function benchRecycle(file: string, rounds: number): Promise<RecycleReport> {
  const model = await loadModel(demo(file), { recycle: demo(HEAD), contextLength: CONTEXT });
  try {
    const outputs = new Map<string, number[][]>();
    const results: Omit<ModeResult, 'overOff' | 'identicalToOff'>[] = [];
    for (const mode of MODES) {
      await runPrompts(model, mode); // warm-up
      let best: { rate: number; stats: GenerationStats[]; tokens: number[][] } | undefined;
      for (let r = 0; r < rounds; r++) {
        const round = await runPrompts(model, mode);
        if (!best || round.rate > best.rate) best = round;
      }
      outputs.set(mode.name, best!.tokens);
      const sum = (pick: (s: GenerationStats) => number) => best!.stats.reduce((a, s) => a + pick(s), 0);
      results.push({
        mode: mode.name,
        decodeTokensPerSecond: best!.rate,
        tokensPerPass: sum((s) => s.generatedTokens - 1) / sum((s) => s.fullPasses),
        acceptanceRate: sum((s) => s.proposed) > 0 ? sum((s) => s.recycled) / sum((s) => s.proposed) : null,
      });
    }
    const off = results[0]!;
    const offTokens = JSON.stringify(outputs.get('off'));
    return {
      model: file,
      prompts: PROMPTS.length,
      decodeTokens: DECODE_TOKENS,
      rounds,
      modes: results.map((r) => ({
        ...r,
        overOff: r.decodeTokensPerSecond / off.decodeTokensPerSecond,
        identicalToOff: JSON.stringify(outputs.get(r.mode)) === offTokens,
      })),
      step: await demoStepCosts(file),
    };
  } finally {
    model.dispose();
  }
}

/** Every prompt once; decode rate = all tokens after each first one / all decode time. */
async function runPrompts(model: Model, mode: ModeCase) {
  const stats: GenerationStats[] = [];
  const tokens: number[][] = [];
  for (const prompt of PROMPTS) {
    const out = await model.complete(prompt, { maxTokens: DECODE_TOKENS, temperature: 0, decode: mode.decode });
    stats.push(out.stats);
    tokens.push(out.tokens);
  }
  const decoded = stats.reduce((a, s) => a + s.generatedTokens - 1, 0);
  const ms = stats.reduce((a, s) => a + s.decodeMs, 0);
  return { rate: (decoded * 1000) / ms, stats, tokens };
}

function demoStepCosts(file: string): Promise<StepCosts> {
  const prompt = PROMPTS[0]! + ' ' + PROMPTS.join(' ').repeat(8);
  return stepCosts(demo(file), demo(HEAD), { contextLength: CONTEXT, position: 200, reps: DEMO_REPS, ids: (tokenizer) => tokenizer.encode(prompt) });
}

export interface StepCostOptions {
  contextLength: number;
  /** Where the measured passes sit: the cache holds this many tokens before them. */
  position: number;
  /** Timed repetitions of each piece (after a warm-up of a tenth as many). */
  reps: number;
  /** Prompt ids, at least position + 10 of them (it is cut to that). */
  ids(tokenizer: Tokenizer): number[];
}

/** Where a 1-token decode step of the model at `modelPath` goes, and what a guess of the head at `headPath` costs. */
export async function stepCosts(modelPath: string, headPath: string, options: StepCostOptions): Promise<StepCosts> {
  const { context } = await openContext(modelPath, { recycle: headPath, contextLength: options.contextLength });
  const { llama } = context;
  const at = options.position;
  const time = (run: () => void) => median(run, options.reps);
  try {
    const ids = options.ids(context.tokenizer).slice(0, at + 10);
    if (ids.length < at + 10) throw new Error(`stepCosts: the prompt has ${ids.length} ids, ${at + 10} are needed`);
    await context.prefill(ids);
    const x = ids[5]!;
    const fullPassMs = time(() => llama.forward([x], at, 0));
    const noLogitsMs = time(() => llama.forward([x], at, 1));
    const noLogitsEarlyMs = time(() => llama.forward([x], 8, 1));
    const batchRatio: Record<number, number> = {};
    for (const n of [2, 3, 4]) batchRatio[n] = time(() => llama.forward(ids.slice(0, n), at, 0)) / fullPassMs;
    llama.forward([x], at, 0);
    const logits = llama.logits(0).slice();
    const headGuessMs = time(() => llama.recycleForward('base', 0, [x], at + 1, 0));
    const greedy = new Sampler({ temperature: 0 });
    const topK = new Sampler({ temperature: 0.8, seed: 1 });
    return {
      fullPassMs,
      outputHeadMs: fullPassMs - noLogitsMs,
      attentionMs: noLogitsMs - noLogitsEarlyMs,
      position: at,
      rest: noLogitsEarlyMs,
      headGuessMs,
      greedySampleMs: time(() => greedy.sample(logits, ids)),
      topKSampleMs: time(() => topK.sample(logits, ids)),
      batchRatio,
    };
  } finally {
    llama.free();
  }
}

function median(run: () => void, reps: number): number {
  for (let i = 0; i < Math.ceil(reps / 10); i++) run();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    run();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

/**
 * Speed-ups over plain decoding that a backend's costs give at a head's acceptance rate, computed (not
 * measured: random heads accept almost nothing). A round runs one 2-token pass (cost t(2)/t(1) of a plain
 * step) and one head guess: `fast` keeps both tokens, `exact` keeps the guess when the pass confirms it.
 */
export function computedSpeedup(costs: { batch2: number; headFraction: number }, acceptance: number): { fast: number; exact: number } {
  const round = costs.batch2 + costs.headFraction;
  return { fast: 2 / round, exact: (1 + acceptance) / round };
}

export function renderRecycle(reports: RecycleReport[]): string {
  const lines = [
    `Recycled decoding on the demo model with its head (${reports[0]?.prompts} prompts × ${reports[0]?.decodeTokens} tokens, greedy, best of ${reports[0]?.rounds} rounds).`,
    '',
    '| model | mode | decode tok/s | ÷ off | tokens per full pass | acceptance | output = off |',
    '| --- | --- | ---: | ---: | ---: | ---: | :---: |',
  ];
  for (const r of reports) {
    for (const m of r.modes) {
      const same = m.mode === 'off' ? '–' : m.identicalToOff ? 'yes' : 'no';
      lines.push(
        `| ${r.model} | ${m.mode} | ${m.decodeTokensPerSecond.toFixed(0)} | ${m.overOff.toFixed(2)}× | ${m.tokensPerPass.toFixed(2)} | ${m.acceptanceRate === null ? '–' : `${(m.acceptanceRate * 100).toFixed(0)}%`} | ${same} |`,
      );
    }
  }
  lines.push(
    '',
    `Where a 1-token decode step goes (medians, ms): the full pass at position ${reports[0]?.step.position}, of which the output matrix, ` +
      'attention over those positions, and the rest (layer matmuls, norms, activation quantization); a head guess; sampling over the vocabulary; ' +
      'and a forward of n tokens relative to one (what a verifying pass costs).',
    '',
    '| model | full pass | output matrix | attention | rest | head guess | greedy pick | top-k sample | t(2)/t(1) | t(3)/t(1) | t(4)/t(1) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of reports) {
    const s = r.step;
    const ms = (v: number) => v.toFixed(3);
    lines.push(
      `| ${r.model} | ${ms(s.fullPassMs)} | ${ms(s.outputHeadMs)} | ${ms(s.attentionMs)} | ${ms(s.rest)} | ${ms(s.headGuessMs)} | ` +
        `${ms(s.greedySampleMs)} | ${ms(s.topKSampleMs)} | ${s.batchRatio[2]!.toFixed(2)} | ${s.batchRatio[3]!.toFixed(2)} | ${s.batchRatio[4]!.toFixed(2)} |`,
    );
  }
  return lines.join('\n');
}
