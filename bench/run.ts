/**
 * `npm run bench`: our engine vs llama.cpp native (node-llama-cpp) vs llama.cpp in WASM (wllama) on random
 * models of real shapes (models.ts), one thread each, greedy; the same engine inside workerd; its internals
 * (t(n)/t(1), the recycle head's cost, memory); recycled decoding on the demo model. Writes
 * bench/results/latest.json, bench/results/bench.svg and the tables in bench/README.md. Asserts nothing.
 *
 *   npm run bench -- [--short] [--models smollm2-135m-q4_0,…] [--engines ours,llama.cpp,wllama,workerd]
 *                    [--parts engines,costs,step,coldstart,recycle,runtimes] [--quick] [--llama-cpu-variant haswell]
 *   npm run bench -- --render     (rewrites the tables and the plot from results/latest.json, measuring nothing)
 *
 * A whole run (no --models / --engines / --parts) replaces the recorded results; a partial one reruns some rows
 * and merges them in. --short measures every row with fewer rounds and no wllama on the 0.6B shape (the
 * PROFILES below); --quick runs short workloads and only prints (its figures are too rough to record).
 */
import { readFileSync, statSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readGGUFHeader } from '../sdk/src/gguf/load.js';
import '../sdk/src/node.js'; // the SDK's Node entry: model files by path, the engine read from disk
import { summarizeGGUF } from '../sdk/src/gguf/summary.js';
import { LlamaCppEngine } from './engines/llama-cpp.js';
import { forceCpuVariant, restoreCpuVariants } from './engines/llama-cpp-build.js';
import { OursEngine } from './engines/ours.js';
import type { Engine } from './engines/types.js';
import { WllamaEngine } from './engines/wllama.js';
import { SHAPES } from './forward/shapes.mjs';
import { agreeingPrefix, benchmarkEngine, type Workload } from './measure.js';
import { BENCH_MODELS, FILE_TYPES, benchHeadPath, benchModelPath, modelName, type BenchModel } from './models.js';
import { renderPlot } from './plot.js';
import { promptIds, repeated } from './prompt.js';
import { RECYCLE_MODELS, benchRecycle, stepCosts } from './recycle.js';
import {
  NATIVE,
  REPORT_VERSION,
  machineInfo,
  mergeReports,
  renderMarkdown,
  type BenchReport,
  type EngineReport,
  type Measured,
  type ModelReport,
  type RuntimeComparison,
} from './report.js';
import { measureEngineCosts } from './wasm-costs.js';
import { measureColdStart } from './workerd/cold-start.js';
import { WorkerdEngine } from './workerd/engine.js';
import { compareRuntimes, type Runtime } from './workerd/runtimes.js';
import { main as runJsonBench } from './json/run.js';

const PARTS = ['engines', 'costs', 'step', 'coldstart', 'recycle', 'runtimes'] as const;
type Part = (typeof PARTS)[number];
const ENGINE_NAMES = ['ours', 'llama.cpp', 'wllama', 'workerd'] as const;
const CONTEXT = 1024;
/**
 * The runtimes compared by default (see workerd/compare.ts for more). workerd runs both engine modules; the other
 * workerd rows run the probe's SIMD128 module and the SDK's own choice (the table's kernels column says which).
 */
const RUNTIMES: Runtime[] = [
  { kind: 'node', flags: [] },
  { kind: 'node', flags: ['--liftoff-only'] },
  { kind: 'workerd', flags: [], engine: 'simd128' },
  { kind: 'workerd', flags: [], engine: 'relaxed' },
  { kind: 'workerd', flags: ['--liftoff-only'] },
  { kind: 'workerd', flags: [], inspector: ['Runtime.enable', 'Network.enable'] },
  { kind: 'workerd', flags: [], inspector: ['Debugger.enable'] },
];

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const RESULTS_JSON = join(RESULTS_DIR, 'latest.json');
const PLOT = join(RESULTS_DIR, 'bench.svg');
const README = fileURLToPath(new URL('./README.md', import.meta.url));
const SCRATCH = fileURLToPath(new URL('./.cache/workerd/', import.meta.url));
const START = '<!-- results:start -->';
const END = '<!-- results:end -->';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string' },
    engines: { type: 'string' },
    parts: { type: 'string' },
    quick: { type: 'boolean', default: false },
    short: { type: 'boolean', default: false },
    'llama-cpu-variant': { type: 'string' },
    'recycle-only': { type: 'boolean', default: false },
    render: { type: 'boolean', default: false },
    'json-only': { type: 'boolean', default: false },
  },
});

function pick<T extends string>(option: string | undefined, all: readonly T[], what: string): T[] {
  if (!option) return [...all];
  const chosen = option.split(',').map((s) => s.trim());
  const unknown = chosen.filter((c) => !all.includes(c as T));
  if (unknown.length) throw new Error(`unknown ${what} ${unknown.join(', ')}; one of ${all.join(', ')}`);
  return chosen as T[];
}

const parts = new Set<Part>(args['recycle-only'] ? ['recycle'] : pick(args.parts, PARTS, 'part'));
const engines = new Set(pick(args.engines, ENGINE_NAMES, 'engine'));
const models = args.models
  ? args.models.split(',').flatMap((name) => {
      const found = BENCH_MODELS.filter((m) => modelName(m) === name || m.shape === name);
      if (!found.length) throw new Error(`unknown model ${name}; one of ${BENCH_MODELS.map(modelName).join(', ')}`);
      return found;
    })
  : BENCH_MODELS;

/** How much each part measures. */
interface Profile {
  /** Timed runs per engine and model (the best is kept), after a short warm-up. */
  timedRuns: number;
  /** No further timed run starts once an engine's runs on a model took this long. */
  budgetSeconds: number;
  decodeTokens: number;
  prefillTokens: number;
  /** Shapes wllama runs on (its prefill of 512 tokens at the 0.6B shape takes minutes a run). */
  wllamaShapes: readonly string[];
  /** Engine internals: decode steps for the JS share; repetitions of each t(n). */
  costDecodeTokens: number;
  batchReps: number;
  /** Repetitions of each piece of a decode step (stepCosts). */
  stepReps: number;
  /** Node vs workerd: interleaved rounds and decode steps per round. */
  runtimeRounds: number;
  runtimeSteps: number;
  runtimePrefill: number;
  /** Demo model's decode modes: timed rounds of the 6 prompts. */
  recycleRounds: number;
}

const PROFILES: Record<'full' | 'short' | 'quick', Profile> = {
  full: {
    timedRuns: 3, budgetSeconds: 180, decodeTokens: 128, prefillTokens: 512, wllamaShapes: Object.keys(SHAPES),
    costDecodeTokens: 32, batchReps: 10, stepReps: 15, runtimeRounds: 5, runtimeSteps: 32, runtimePrefill: 256, recycleRounds: 3,
  },
  // Every row of the full run in about a third of its time: the issue's prefill of 512 tokens stays.
  short: {
    timedRuns: 2, budgetSeconds: 10, decodeTokens: 64, prefillTokens: 512, wllamaShapes: ['smollm2-135m'],
    costDecodeTokens: 16, batchReps: 4, stepReps: 7, runtimeRounds: 2, runtimeSteps: 16, runtimePrefill: 256, recycleRounds: 2,
  },
  quick: {
    timedRuns: 1, budgetSeconds: 0, decodeTokens: 32, prefillTokens: 128, wllamaShapes: Object.keys(SHAPES),
    costDecodeTokens: 8, batchReps: 3, stepReps: 3, runtimeRounds: 1, runtimeSteps: 8, runtimePrefill: 64, recycleRounds: 1,
  },
};
const quick = args.quick;
const profileName = quick ? 'quick' : args.short ? 'short' : 'full';
const profile = PROFILES[profileName];
/** Nothing picked: the run measures everything and replaces the recorded results instead of merging into them. */
const whole = !args.models && !args.engines && !args.parts && !args['recycle-only'];

function measuredNow(before: number[]): Measured {
  return { date: new Date().toISOString(), loadAverageBefore: before, loadAverageAfter: os.loadavg() };
}

async function workload(path: string): Promise<Workload> {
  const ids = await promptIds(path);
  return { decodePrompt: ids, decodeTokens: profile.decodeTokens, prefillPrompt: repeated(ids, profile.prefillTokens), timedRuns: profile.timedRuns, budgetSeconds: profile.budgetSeconds };
}

function enginesFor(model: BenchModel): Array<() => Engine> {
  const list: Array<() => Engine> = [];
  if (engines.has('ours')) list.push(() => new OursEngine(CONTEXT));
  if (engines.has('llama.cpp')) list.push(() => new LlamaCppEngine(CONTEXT));
  if (engines.has('wllama') && profile.wllamaShapes.includes(model.shape)) list.push(() => new WllamaEngine(CONTEXT));
  if (engines.has('workerd')) list.push(() => new WorkerdEngine(CONTEXT, SCRATCH));
  return list;
}

let llamaCpuBuild: string | undefined;

async function runModel(model: BenchModel): Promise<ModelReport> {
  const name = modelName(model);
  const path = benchModelPath(model, console.log);
  const header = await readGGUFHeader(path);
  const work = await workload(path);
  const summary = summarizeGGUF(header);
  const report: ModelReport = {
    name,
    label: `${SHAPES[model.shape].label}, ${FILE_TYPES[model.fileType].label}`,
    file: basename(path),
    parameters: summary.parameterCount,
    bytes: statSync(path).size,
    tensorTypes: Object.fromEntries(summary.types.map((t) => [t.name, t.tensors])),
    decodePromptTokens: work.decodePrompt.length,
    decodeTokens: work.decodeTokens,
    prefillTokens: work.prefillPrompt.length,
    engines: [],
  };
  if (parts.has('engines')) {
    const tokens = new Map<string, number[]>();
    for (const create of enginesFor(model)) {
      const engine = create();
      console.log(`  ${name}: ${engine.name} …`);
      const before = os.loadavg();
      const { tokens: out, ...result } = await benchmarkEngine(engine, path, work);
      if (engine instanceof LlamaCppEngine) llamaCpuBuild = engine.cpuBuild.join('/');
      const row: EngineReport = { ...result, description: engine.description, measured: measuredNow(before) };
      if (engine instanceof WorkerdEngine) row.peakRssMiB = engine.lastPeakRssMiB;
      tokens.set(engine.name, out);
      report.engines.push(row);
    }
    const reference = tokens.get(NATIVE);
    for (const row of report.engines) {
      if (reference && row.engine !== NATIVE) row.tokensAgreeingWithLlamaCpp = agreeingPrefix(tokens.get(row.engine)!, reference);
    }
  }
  if (parts.has('costs')) {
    console.log(`  ${name}: engine internals …`);
    const before = os.loadavg();
    const costs = await measureEngineCosts(path, { contextLength: CONTEXT, promptIds: work.decodePrompt, decodeTokens: profile.costDecodeTokens, batchSizes: [1, 2, 3, 4], batchReps: profile.batchReps });
    report.costs = { ...costs, measured: measuredNow(before) };
  }
  if (parts.has('step')) {
    console.log(`  ${name}: decode step and recycle head costs …`);
    const before = os.loadavg();
    const position = 256;
    const step = await stepCosts(path, await benchHeadPath(model, console.log), {
      contextLength: CONTEXT,
      position,
      reps: profile.stepReps,
      ids: () => repeated(work.decodePrompt, position + 10),
    });
    report.step = { ...step, measured: measuredNow(before) };
  }
  if (parts.has('coldstart') && model.shape === 'smollm2-135m') {
    console.log(`  ${name}: cold start of the product Worker …`);
    const before = os.loadavg();
    const cold = await measureColdStart(path, work.decodePrompt, CONTEXT, SCRATCH);
    report.coldStart = { ...cold, measured: measuredNow(before) };
  }
  return report;
}

/** The bare engine and the SDK, each in Node and in workerd with the settings that explain workerd's speed. */
async function runtimeComparisons(): Promise<RuntimeComparison[]> {
  const model: BenchModel = { shape: 'smollm2-135m', fileType: 'Q4_0' };
  const modelPath = benchModelPath(model, console.log);
  const comparisons: RuntimeComparison[] = [];
  mkdirSync(SCRATCH, { recursive: true });
  for (const app of ['probe', 'sdk'] as const) {
    console.log(`${app === 'probe' ? 'bare engine' : 'SDK'} in Node and workerd (${modelName(model)}) …`);
    const before = os.loadavg();
    const figures = await compareRuntimes({
      app,
      shape: model.shape,
      type: model.fileType.toLowerCase(),
      runtimes: RUNTIMES,
      rounds: profile.runtimeRounds,
      steps: profile.runtimeSteps,
      prefill: profile.runtimePrefill,
      sizes: [1, 2, 4],
      modelPath,
      promptIds: await promptIds(modelPath),
      scratchDir: SCRATCH,
      log: console.log,
    });
    comparisons.push({ app, shape: model.shape, type: model.fileType.toLowerCase(), figures, measured: measuredNow(before) });
  }
  return comparisons;
}

function readPrevious(): BenchReport | undefined {
  if (!existsSync(RESULTS_JSON)) return undefined;
  const previous = JSON.parse(readFileSync(RESULTS_JSON, 'utf8')) as BenchReport;
  return previous.version === REPORT_VERSION ? previous : undefined;
}

function write(report: BenchReport): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(RESULTS_JSON, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(PLOT, renderPlot(report));
  const readme = readFileSync(README, 'utf8');
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start === -1 || end < start) throw new Error(`bench/README.md lacks the ${START} … ${END} markers`);
  writeFileSync(README, `${readme.slice(0, start + START.length)}\n${renderMarkdown(report)}\n${readme.slice(end)}`);
}

async function main(): Promise<void> {
  // `npm run bench -- --json-only`: JSON-mode decoding (bench/json/run.ts), which rewrites its own README's tables.
  if (args['json-only']) return runJsonBench();
  if (args.render) {
    const recorded = readPrevious();
    if (!recorded) throw new Error(`--render: no results of version ${REPORT_VERSION} in ${RESULTS_JSON}`);
    write(recorded);
    return console.log(`rewrote ${PLOT} and the tables in ${README} from ${RESULTS_JSON}`);
  }
  restoreCpuVariants();
  const restore = args['llama-cpu-variant'] ? forceCpuVariant(args['llama-cpu-variant']) : undefined;
  const report: BenchReport = {
    version: REPORT_VERSION,
    machine: machineInfo(),
    method: {
      threads: 1,
      sampling: 'greedy',
      timedRuns: profile.timedRuns,
      statistic:
        `${profileName === 'full' ? '' : `\`--${profileName}\` profile: `}best of ${profile.timedRuns} timed runs after a short warm-up ` +
        `(fewer for an engine whose runs pass ${profile.budgetSeconds} s)` +
        (profile.wllamaShapes.length < Object.keys(SHAPES).length ? `; wllama on the ${profile.wllamaShapes.join(', ')} shape only` : ''),
    },
    models: [],
    recycle: [],
    runtimes: [],
  };
  // Each finished piece is merged into the recorded results at once, so that a failure later loses only its own piece.
  const save = () => {
    report.machine = machineInfo(llamaCpuBuild);
    if (!quick) write(whole ? report : mergeReports(readPrevious(), report));
  };
  try {
    const perModel = parts.has('engines') || parts.has('costs') || parts.has('step') || parts.has('coldstart');
    for (const model of perModel ? models : []) {
      console.log(`${modelName(model)}`);
      report.models.push(await runModel(model));
      save();
    }
  } finally {
    restore?.();
  }
  if (parts.has('runtimes')) {
    report.runtimes.push(...(await runtimeComparisons()));
    save();
  }
  if (parts.has('recycle')) {
    for (const file of RECYCLE_MODELS) {
      console.log(`${file} with its recycle head: decode modes …`);
      report.recycle.push(await benchRecycle(file, profile.recycleRounds));
    }
    save();
  }
  console.log(`\n${renderMarkdown(quick || whole ? report : mergeReports(readPrevious(), report))}\n`);
  console.log(quick ? '--quick: nothing written' : `wrote ${RESULTS_JSON}, ${PLOT} and the tables in ${README}`);
}

await main();
