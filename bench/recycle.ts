/**
 * Recycled decoding on the demo model (models/demo) with its recycle head: decode tokens/s of each mode
 * and its ratio to `off`, the acceptance rate, tokens per full pass, and where a decode step's time goes.
 */
import { fileURLToPath } from 'node:url';
import { openContext } from '../sdk/src/model.js';
import { loadModel, type DecodeMode, type GenerationStats, type Model } from '../sdk/src/index.js';
import { Sampler } from '../sdk/src/sampler.js';

const demo = (file: string) => fileURLToPath(new URL(`../models/demo/${file}`, import.meta.url));
export const RECYCLE_MODELS = ['demo-q8_0.gguf', 'demo-q4_0.gguf'];
const HEAD = 'demo-recycle.gguf';
const CONTEXT = 256;
const DECODE_TOKENS = 96;
const ROUNDS = 3;
const REPS = 200;
const PROMPTS = [
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
  attentionAt200Ms: number;
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
  modes: ModeResult[];
  step: StepCosts;
}

export async function benchRecycle(file: string): Promise<RecycleReport> {
  const model = await loadModel(demo(file), { recycle: demo(HEAD), contextLength: CONTEXT });
  try {
    const outputs = new Map<string, number[][]>();
    const results: Omit<ModeResult, 'overOff' | 'identicalToOff'>[] = [];
    for (const mode of MODES) {
      await runPrompts(model, mode); // warm-up
      let best: { rate: number; stats: GenerationStats[]; tokens: number[][] } | undefined;
      for (let r = 0; r < ROUNDS; r++) {
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
      modes: results.map((r) => ({
        ...r,
        overOff: r.decodeTokensPerSecond / off.decodeTokensPerSecond,
        identicalToOff: JSON.stringify(outputs.get(r.mode)) === offTokens,
      })),
      step: await stepCosts(file),
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

async function stepCosts(file: string): Promise<StepCosts> {
  const { context } = await openContext(demo(file), { recycle: demo(HEAD), contextLength: CONTEXT });
  const { llama } = context;
  try {
    const ids = context.tokenizer.encode(PROMPTS[0]! + ' ' + PROMPTS.join(' ').repeat(8)).slice(0, 210);
    await context.prefill(ids);
    const x = ids[5]!;
    const fullPassMs = median(() => llama.forward([x], 200, 0));
    const noLogitsMs = median(() => llama.forward([x], 200, 1));
    const noLogitsEarlyMs = median(() => llama.forward([x], 8, 1));
    const batchRatio: Record<number, number> = {};
    for (const n of [2, 3, 4]) batchRatio[n] = median(() => llama.forward(ids.slice(0, n), 200, 0)) / fullPassMs;
    llama.forward([x], 200, 0);
    const logits = llama.logits(0).slice();
    const headGuessMs = median(() => llama.recycleForward('base', 0, [x], 201, 0));
    const greedy = new Sampler({ temperature: 0 });
    const topK = new Sampler({ temperature: 0.8, seed: 1 });
    return {
      fullPassMs,
      outputHeadMs: fullPassMs - noLogitsMs,
      attentionAt200Ms: noLogitsMs - noLogitsEarlyMs,
      rest: noLogitsEarlyMs,
      headGuessMs,
      greedySampleMs: median(() => greedy.sample(logits, ids)),
      topKSampleMs: median(() => topK.sample(logits, ids)),
      batchRatio,
    };
  } finally {
    llama.free();
  }
}

function median(run: () => void): number {
  for (let i = 0; i < 20; i++) run();
  const times: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    run();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

export function renderRecycle(reports: RecycleReport[]): string {
  const lines = [
    `Recycled decoding on the demo model with its head (${reports[0]?.prompts} prompts × ${reports[0]?.decodeTokens} tokens, greedy, best of ${ROUNDS}).`,
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
    'Where a 1-token decode step goes (medians, ms): the full pass at position 200, of which the output matrix, ' +
      'attention over 200 positions, and the rest (layer matmuls, norms, activation quantization); a head guess; sampling over the vocabulary; ' +
      'and a forward of n tokens relative to one (what a verifying pass costs).',
    '',
    '| model | full pass | output matrix | attention @200 | rest | head guess | greedy pick | top-k sample | t(2)/t(1) | t(3)/t(1) | t(4)/t(1) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of reports) {
    const s = r.step;
    const ms = (v: number) => v.toFixed(3);
    lines.push(
      `| ${r.model} | ${ms(s.fullPassMs)} | ${ms(s.outputHeadMs)} | ${ms(s.attentionAt200Ms)} | ${ms(s.rest)} | ${ms(s.headGuessMs)} | ` +
        `${ms(s.greedySampleMs)} | ${ms(s.topKSampleMs)} | ${s.batchRatio[2]!.toFixed(2)} | ${s.batchRatio[3]!.toFixed(2)} | ${s.batchRatio[4]!.toFixed(2)} |`,
    );
  }
  return lines.join('\n');
}
