/**
 * `npm run bench`: ours vs llama.cpp native (node-llama-cpp) vs llama.cpp in WASM (wllama) on ~30M-parameter
 * random llama models, one thread each, greedy, same prompt; then our engine's JS↔WASM and batched-pass costs.
 * Reports ratios from one run; it asserts nothing about speed. See bench/README.md.
 */
import { statSync } from 'node:fs';
import os from 'node:os';
import { basename } from 'node:path';
import { readGGUFHeader } from '../sdk/src/gguf/load.js';
import { summarizeGGUF } from '../sdk/src/gguf/summary.js';
import { createTokenizer } from '../sdk/src/tokenizer/index.js';
import { LlamaCppEngine } from './engines/llama-cpp.js';
import { OursEngine } from './engines/ours.js';
import type { Engine } from './engines/types.js';
import { WllamaEngine } from './engines/wllama.js';
import { agreeingPrefix, benchmarkEngine, type EngineResult } from './measure.js';
import { BENCH_MODELS, benchModelPath } from './models.js';
import { machineInfo, renderMarkdown, writeReport, type BenchReport, type ModelReport, type Ratio } from './report.js';
import { RECYCLE_MODELS, benchRecycle, type RecycleReport } from './recycle.js';
import { loadInstrumented, measureBatchCost, measureCrossingShare } from './wasm-costs.js';
import { main as runJsonBench } from './json/run.js';

const DECODE_TOKENS = 128;
const TIMED_RUNS = 3;
const CONTEXT = 512;
const BATCH_SIZES = [1, 2, 4];
const BATCH_REPS = 30;
const PROMPT =
  'Once upon a time, in a small village by the sea, there lived an old fisherman who told stories to the children. ' +
  'Every evening they gathered on the beach to hear about storms, whales and the lights that danced over the water.';

interface BenchCase {
  model: string;
  path: string;
  engines: Array<() => Engine>;
}

const REFERENCE = 'llama.cpp';

function baseCases(): BenchCase[] {
  return Object.entries(BENCH_MODELS).map(([model, spec]) => ({
    model,
    path: benchModelPath(spec),
    engines: [() => new OursEngine({ contextLength: CONTEXT }), () => new LlamaCppEngine(CONTEXT), () => new WllamaEngine(CONTEXT)],
  }));
}

async function runCase(bench: BenchCase): Promise<ModelReport> {
  const header = await readGGUFHeader(bench.path);
  const promptIds = createTokenizer(header.metadata).encode(PROMPT);
  const results: EngineResult[] = [];
  for (const create of bench.engines) {
    const engine = create();
    console.log(`  ${bench.model}: ${engine.name} …`);
    results.push(await benchmarkEngine(engine, bench.path, promptIds, DECODE_TOKENS, TIMED_RUNS));
  }
  const reference = results.find((r) => r.engine === REFERENCE);
  console.log(`  ${bench.model}: engine internals …`);
  const { context, engine } = await loadInstrumented(bench.path, CONTEXT);
  const crossing = await measureCrossingShare(context, engine, promptIds, DECODE_TOKENS);
  const batch = measureBatchCost(context, promptIds, promptIds.length, BATCH_SIZES, BATCH_REPS);
  context.llama.free();
  const summary = summarizeGGUF(header);
  return {
    name: bench.model,
    file: basename(bench.path),
    tensorTypes: Object.fromEntries(summary.types.map((t) => [t.name, t.tensors])),
    parameters: summary.parameterCount,
    bytes: statSync(bench.path).size,
    promptTokens: promptIds.length,
    engines: results.map(({ tokens, ...rest }) => ({
      ...rest,
      tokensAgreeingWithLlamaCpp: reference && rest.engine !== REFERENCE ? agreeingPrefix(tokens, reference.tokens) : undefined,
    })),
    oursOver: oursOverPeers(results),
    wasmCosts: { crossing, batch },
  };
}

/** ours ÷ each peer engine (plain decoding), keyed by the peer's name. */
function oursOverPeers(results: EngineResult[]): Record<string, Ratio> {
  const ours = results.find((r) => r.engine === 'ours');
  if (!ours) return {};
  const peers = results.filter((r) => !r.engine.startsWith('ours'));
  return Object.fromEntries(
    peers.map((peer) => [
      peer.engine,
      { decode: ours.decodeTokensPerSecond / peer.decodeTokensPerSecond, prefill: ours.prefillTokensPerSecond / peer.prefillTokensPerSecond },
    ]),
  );
}

async function main(): Promise<void> {
  // `npm run bench -- --json-only`: JSON-mode decoding (bench/json/run.ts), which rewrites its own README's tables.
  if (process.argv.includes('--json-only')) return runJsonBench();
  const loadAverageBefore = os.loadavg();
  // `npm run bench -- --recycle-only` skips the peers and measures the decode modes alone.
  const recycleOnly = process.argv.includes('--recycle-only');
  const models: ModelReport[] = [];
  for (const bench of recycleOnly ? [] : baseCases()) {
    console.log(`${bench.model} (${bench.path})`);
    models.push(await runCase(bench));
  }
  const recycle: RecycleReport[] = [];
  for (const file of RECYCLE_MODELS) {
    console.log(`${file} with its recycle head: decode modes …`);
    recycle.push(await benchRecycle(file));
  }
  const report: BenchReport = {
    date: new Date().toISOString(),
    machine: machineInfo(loadAverageBefore),
    method: { threads: 1, sampling: 'greedy', decodeTokens: DECODE_TOKENS, warmupRuns: 1, timedRuns: TIMED_RUNS, statistic: `best of ${TIMED_RUNS}` },
    models,
    recycle,
  };
  console.log(`\n${renderMarkdown(report)}\n`);
  if (recycleOnly) return; // a partial run does not replace the recorded results
  writeReport(report);
  console.log('wrote bench/results/latest.json and the table in bench/README.md');
}

await main();
