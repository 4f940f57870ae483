/** The benchmark's outputs: a markdown table (console and README), results/latest.json. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import type { EngineResult } from './measure.js';
import { renderRecycle, type RecycleReport } from './recycle.js';
import type { BatchCost, CrossingShare } from './wasm-costs.js';

export interface Ratio {
  decode: number;
  prefill: number;
}

export interface ModelReport {
  name: string;
  file: string;
  /** ggml type name → tensor count. */
  tensorTypes: Record<string, number>;
  parameters: number;
  bytes: number;
  promptTokens: number;
  engines: Array<Omit<EngineResult, 'tokens'> & { tokensAgreeingWithLlamaCpp?: number }>;
  /** ours / other engine, keyed by the other engine's name ('llama.cpp', 'wllama'); > 1 means ours is faster. */
  oursOver: Record<string, Ratio>;
  wasmCosts: { crossing: CrossingShare; batch: BatchCost };
}

export interface BenchReport {
  date: string;
  machine: { cpu: string; cores: number; node: string; platform: string; loadAverageBefore: number[]; loadAverageAfter: number[]; uptimeAfter: string };
  method: { threads: number; sampling: string; decodeTokens: number; warmupRuns: number; timedRuns: number; statistic: string };
  models: ModelReport[];
  recycle: RecycleReport[];
}

const RESULTS_JSON = new URL('./results/latest.json', import.meta.url);
const README = new URL('./README.md', import.meta.url);
const START = '<!-- results:start -->';
const END = '<!-- results:end -->';

export function machineInfo(loadAverageBefore: number[]): BenchReport['machine'] {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAverageBefore,
    loadAverageAfter: os.loadavg(),
    uptimeAfter: uptime(),
  };
}

function uptime(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return `load average ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}`;
  }
}

const fixed = (value: number, digits = 1) => value.toFixed(digits);
const ratio = (value: number | undefined) => (value === undefined ? '–' : `${value.toFixed(2)}×`);
const percent = (value: number, digits = 1) => `${(value * 100).toFixed(digits)}%`;

export function renderMarkdown(report: BenchReport): string {
  const lines = [
    `Measured ${report.date} on ${report.machine.cpu} (${report.machine.cores} cores, shared), Node ${report.machine.node}; ` +
      `load average ${report.machine.loadAverageBefore.map((l) => l.toFixed(2)).join(' / ')} before, ` +
      `${report.machine.loadAverageAfter.map((l) => l.toFixed(2)).join(' / ')} after.`,
    '',
    '| model | engine | decode tok/s | prefill tok/s | ours ÷ engine (decode) | ours ÷ engine (prefill) | greedy tokens equal to llama.cpp |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const model of report.models) {
    for (const e of model.engines) {
      const vs = model.oursOver[e.engine];
      const agree = e.tokensAgreeingWithLlamaCpp === undefined ? '–' : `${e.tokensAgreeingWithLlamaCpp}/${report.method.decodeTokens}`;
      lines.push(`| ${model.name} | ${e.engine} | ${fixed(e.decodeTokensPerSecond)} | ${fixed(e.prefillTokensPerSecond)} | ${ratio(vs?.decode)} | ${ratio(vs?.prefill)} | ${agree} |`);
    }
  }
  lines.push(
    '',
    'Engine internals (ours, plain decoding): export calls per forward pass, cost of one bare export call, their share of a decode step, ' +
      'the share of a decode step spent in JS outside `rg_forward` (sampling, detokenizing, the loop), and the cost of a forward of n tokens relative to one.',
    '',
    '| model | calls / pass | bare call | crossing share | JS share | step ms | t(1) ms | t(2)/t(1) | t(4)/t(1) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const model of report.models) {
    const { crossing, batch } = model.wasmCosts;
    lines.push(
      `| ${model.name} | ${fixed(crossing.callsPerToken)} | ${fixed(crossing.bareCallNs)} ns | ${percent(crossing.crossingShare, 4)} | ${percent(crossing.jsShare)} | ` +
        `${fixed(crossing.decodeStepMs, 2)} | ${fixed(batch.forwardMs[1], 2)} | ${fixed(batch.ratio[2], 2)} | ${fixed(batch.ratio[4], 2)} |`,
    );
  }
  if (report.recycle.length > 0) lines.push('', renderRecycle(report.recycle));
  return lines.join('\n');
}

export function writeReport(report: BenchReport): void {
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(RESULTS_JSON, `${JSON.stringify(report, null, 2)}\n`);
  const readme = readFileSync(README, 'utf8');
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start === -1 || end < start) throw new Error(`bench/README.md lacks the ${START} … ${END} markers`);
  writeFileSync(README, `${readme.slice(0, start + START.length)}\n${renderMarkdown(report)}\n${readme.slice(end)}`);
}
