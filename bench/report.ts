/**
 * The benchmark's results: their shape (results/latest.json), merging a partial run into the last full one,
 * and the markdown tables of bench/README.md (the plot is plot.ts).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { EngineResult, Rate } from './measure.js';
import { computedSpeedup, renderRecycle, type RecycleReport, type StepCosts } from './recycle.js';
import type { EngineCosts } from './wasm-costs.js';
import type { ColdStart } from './workerd/cold-start.js';
import type { App, RuntimeFigures } from './workerd/runtimes.js';

export const REPORT_VERSION = 2;
export const OURS = 'ours';
export const OURS_WORKERD = 'ours in workerd';
export const NATIVE = 'llama.cpp';
export const WLLAMA = 'wllama';

export interface Machine {
  cpu: string;
  /** The x86 extensions llama.cpp's builds choose by (from /proc/cpuinfo), e.g. ['AVX2', 'AVX-512', 'AVX512-VNNI']. */
  cpuFeatures?: string[];
  cores: number;
  node: string;
  platform: string;
  /** ggml CPU backend node-llama-cpp loaded (libggml-cpu-<build>.so), when llama.cpp ran. */
  llamaCpuBuild?: string;
}

/** When and under what load a piece was measured: pieces of a report may come from different runs. */
export interface Measured {
  date: string;
  loadAverageBefore: number[];
  loadAverageAfter: number[];
}

export interface EngineReport extends Omit<EngineResult, 'tokens'> {
  tokensAgreeingWithLlamaCpp?: number;
  measured: Measured;
  /** ours in workerd: peak resident memory of the workerd process, MiB. */
  peakRssMiB?: number;
}

export interface ModelReport {
  /** e.g. smollm2-135m-q8_0 */
  name: string;
  /** e.g. 'SmolLM2-135M shape, Q8_0 (pure)' */
  label: string;
  file: string;
  parameters: number;
  bytes: number;
  /** ggml type name → tensor count. */
  tensorTypes: Record<string, number>;
  decodePromptTokens: number;
  decodeTokens: number;
  prefillTokens: number;
  engines: EngineReport[];
  /** Engine internals in Node: JS↔WASM crossings, t(n), memory. */
  costs?: EngineCosts & { measured: Measured };
  /** Where a decode step goes, and the random head's guess. */
  step?: StepCosts & { measured: Measured };
  coldStart?: ColdStart & { measured: Measured };
}

export interface RuntimeComparison {
  app: App;
  shape: string;
  type: string;
  figures: RuntimeFigures[];
  measured: Measured;
}

export interface BenchReport {
  version: typeof REPORT_VERSION;
  machine: Machine;
  method: { threads: number; sampling: string; timedRuns: number; statistic: string };
  models: ModelReport[];
  recycle: RecycleReport[];
  runtimes: RuntimeComparison[];
}

/** /proc/cpuinfo flag → the name the report gives it. */
const CPU_FEATURES: Array<[string, string]> = [
  ['avx2', 'AVX2'],
  ['avx_vnni', 'AVX-VNNI'],
  ['avx512f', 'AVX-512'],
  ['avx512_vnni', 'AVX512-VNNI'],
  ['avx512_bf16', 'AVX512-BF16'],
  ['amx_int8', 'AMX-INT8'],
];

function cpuFeatures(): string[] | undefined {
  try {
    const flags = new Set(/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim().split(/\s+/));
    return CPU_FEATURES.filter(([flag]) => flags.has(flag)).map(([, name]) => name);
  } catch {
    return undefined; // not Linux
  }
}

export function machineInfo(llamaCpuBuild?: string): Machine {
  const features = cpuFeatures();
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    ...(features ? { cpuFeatures: features } : {}),
    cores: os.cpus().length,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    ...(llamaCpuBuild ? { llamaCpuBuild } : {}),
  };
}

/**
 * `next` over `previous`: a model or engine measured now replaces the one measured before; the rest stay,
 * so that `npm run bench -- --models …` reruns a row without losing the others.
 */
export function mergeReports(previous: BenchReport | undefined, next: BenchReport): BenchReport {
  if (!previous || previous.version !== REPORT_VERSION) return next;
  const models = [...previous.models];
  for (const model of next.models) {
    const at = models.findIndex((m) => m.name === model.name);
    if (at === -1) {
      models.push(model);
      continue;
    }
    const old = models[at]!;
    const engines = [...old.engines.filter((e) => !model.engines.some((n) => n.engine === e.engine)), ...model.engines];
    // The workload (token counts) describes the engine rows: a rerun that measured none keeps the old one.
    const workload = model.engines.length ? model : old;
    models[at] = {
      ...old,
      ...model,
      decodePromptTokens: workload.decodePromptTokens,
      decodeTokens: workload.decodeTokens,
      prefillTokens: workload.prefillTokens,
      costs: model.costs ?? old.costs,
      step: model.step ?? old.step,
      coldStart: model.coldStart ?? old.coldStart,
      engines,
    };
  }
  const same = (a: RuntimeComparison, b: RuntimeComparison) => a.app === b.app && a.shape === b.shape && a.type === b.type;
  const runtimes = [...previous.runtimes.filter((r) => !next.runtimes.some((n) => same(n, r))), ...next.runtimes];
  return {
    ...next,
    machine: { ...previous.machine, ...next.machine },
    models,
    recycle: next.recycle.length ? next.recycle : previous.recycle,
    runtimes,
  };
}

const fixed = (value: number | undefined, digits = 1) => (value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits));
const times = (value: number | undefined) => (value === undefined || !Number.isFinite(value) ? '–' : `${value.toFixed(2)}×`);
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const load = (m: Measured) => `${m.loadAverageBefore[0]!.toFixed(1)}→${m.loadAverageAfter[0]!.toFixed(1)}`;

/** A run counts as provisional when other jobs kept the CPU busy (1-minute load average above half the cores). */
export function isProvisional(measured: Measured[], cores: number): boolean {
  return measured.some((m) => Math.max(m.loadAverageBefore[0]!, m.loadAverageAfter[0]!) > cores / 2);
}

function engine(model: ModelReport, name: string): EngineReport | undefined {
  return model.engines.find((e) => e.engine === name);
}

/** ours ÷ `other` by one clock; > 1: ours is faster. */
export function oursOver(model: ModelReport, other: string, pick: (e: EngineReport) => Rate, cpu = false, oursName = OURS): number | undefined {
  const ours = engine(model, oursName);
  const peer = engine(model, other);
  if (!ours || !peer) return undefined;
  const rate = (e: EngineReport) => (cpu ? pick(e).cpuTokensPerSecond : pick(e).tokensPerSecond);
  return rate(ours) / rate(peer);
}

/** The acceptance rate the computed speed-ups use: the demo Q8_0 model's head, always drafting, measured in this or the merged run. */
export function demoAcceptance(report: BenchReport): number | undefined {
  const row = report.recycle[0]?.modes.find((m) => m.mode === 'exact, always drafting');
  return row?.acceptanceRate ?? undefined;
}

export function renderMarkdown(report: BenchReport): string {
  const measured = [
    ...report.models.flatMap((m) => [...m.engines.map((e) => e.measured), ...(m.costs ? [m.costs.measured] : []), ...(m.step ? [m.step.measured] : [])]),
    ...report.runtimes.map((r) => r.measured),
  ];
  const dates = measured.map((m) => m.date).sort();
  const { machine } = report;
  const lines = [
    `Measured ${dates[0]?.slice(0, 16) ?? '–'} – ${dates[dates.length - 1]?.slice(0, 16) ?? '–'} on ${machine.cpu} ` +
      `(${machine.cores} cores${machine.cpuFeatures ? `; ${machine.cpuFeatures.join(', ')}${machine.cpuFeatures.includes('AMX-INT8') ? '' : ', no AMX'}` : ''}), ${machine.platform}, Node ${machine.node}; ` +
      `llama.cpp: node-llama-cpp 3.22.1 with its ${machine.llamaCpuBuild ? `\`libggml-cpu-${machine.llamaCpuBuild}.so\`` : 'default'} CPU build. ` +
      `${report.method.statistic}; one thread everywhere; the load column is the 1-minute load average before → after each engine's runs.`,
    '',
  ];
  if (isProvisional(measured, machine.cores)) {
    lines.push(
      `**Provisional**: other jobs shared the CPU during these runs (load average above ${machine.cores / 2} on ${machine.cores} cores); ` +
        'the by-CPU-time ratios are the steadier ones, and every figure wants a rerun on a quiet machine.',
      '',
    );
  }
  lines.push(
    `Decode: tokens per second after a short prompt; prefill: a ${report.models[0]?.prefillTokens ?? 512}-token prompt up to its first token. ` +
      'Ratios are ours ÷ engine (above 1×: ours is faster), by the wall clock and by this process\'s CPU time; for *ours in workerd* they are workerd ÷ Node.',
    '',
    '| model | engine | decode tok/s | prefill tok/s | decode ratio | prefill ratio | decode ratio (CPU) | prefill ratio (CPU) | greedy = llama.cpp | load |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  );
  for (const model of report.models) {
    for (const e of model.engines) {
      const ratios =
        e.engine === OURS
          ? ['–', '–', '–', '–']
          : e.engine === OURS_WORKERD
            ? [overOurs(model, e, (x) => x.decode, false), overOurs(model, e, (x) => x.prefill, false), overOurs(model, e, (x) => x.decode, true), overOurs(model, e, (x) => x.prefill, true)]
            : [false, true].flatMap((cpu) => [times(oursOver(model, e.engine, (x) => x.decode, cpu)), times(oursOver(model, e.engine, (x) => x.prefill, cpu))]);
      const [decodeWall, prefillWall, decodeCpu, prefillCpu] = ratios;
      const agree = e.tokensAgreeingWithLlamaCpp === undefined ? '–' : `${e.tokensAgreeingWithLlamaCpp}/${model.decodeTokens}`;
      lines.push(
        `| ${model.name} | ${e.engine} | ${fixed(e.decode.tokensPerSecond)} | ${fixed(e.prefill.tokensPerSecond)} | ${decodeWall} | ${prefillWall} | ${decodeCpu} | ${prefillCpu} | ${agree} | ${load(e.measured)} |`,
      );
    }
  }
  const deployed = report.models.filter((m) => engine(m, OURS_WORKERD) && engine(m, NATIVE));
  if (deployed.length) {
    lines.push(
      '',
      'Where users deploy: *ours in workerd* (Cloudflare Workers\' runtime, with the kernels the SDK picks there) against the same llama.cpp ' +
        'and wllama runs, by CPU time (above 1×: ours is faster).',
      '',
      '| model | kernels | decode ÷ llama.cpp | prefill ÷ llama.cpp | decode ÷ wllama | prefill ÷ wllama |',
      '| --- | --- | ---: | ---: | ---: | ---: |',
    );
    for (const model of deployed) {
      const over = (peer: string, pick: (x: EngineReport) => Rate) => times(oursOver(model, peer, pick, true, OURS_WORKERD));
      const kernels = /\((\S+) kernels\)/.exec(engine(model, OURS_WORKERD)!.description)?.[1] ?? '–';
      lines.push(
        `| ${model.name} | ${kernels} | ${over(NATIVE, (x) => x.decode)} | ${over(NATIVE, (x) => x.prefill)} | ${over(WLLAMA, (x) => x.decode)} | ${over(WLLAMA, (x) => x.prefill)} |`,
      );
    }
  }
  const costed = report.models.filter((m) => m.costs || m.step);
  if (costed.length) {
    lines.push(
      '',
      'Engine internals in Node: t(1) is one forward pass with logits at the prompt\'s end; t(n)/t(1) the cost of a pass over n tokens ' +
        '(logits for every row, as a verifying pass needs) relative to one; the head guess is one step of a random recycle head of matching shape ' +
        '(one layer plus the shared output matrix) relative to a full pass; the output matrix and attention shares are of a 1-token pass at the ' +
        'position shown; JS share: the part of a decode step outside `rg_forward`. Peak WASM memory against the weights plus the KV cache at the context length.',
      '',
      '| model | t(1) ms | t(2)/t(1) | t(3)/t(1) | t(4)/t(1) | head ÷ pass | output matrix | attention (position) | JS share | peak WASM MiB | weights + KV MiB | overhead MiB |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const m of costed) {
      const b = m.costs?.batch;
      const s = m.step;
      const mem = m.costs?.memory;
      const share = (ms: number | undefined) => (s && ms !== undefined ? `${((ms / s.fullPassMs) * 100).toFixed(0)}%` : '–');
      lines.push(
        `| ${m.name} | ${fixed(b?.forwardMs[1], 2)} | ${fixed(b?.ratio[2], 2)} | ${fixed(b?.ratio[3], 2)} | ${fixed(b?.ratio[4], 2)} | ` +
          `${s ? fixed(s.headGuessMs / s.fullPassMs, 2) : '–'} | ${share(s?.outputHeadMs)} | ${s ? `${share(s.attentionMs)} (${s.position})` : '–'} | ` +
          `${m.costs ? `${(m.costs.crossing.jsShare * 100).toFixed(1)}%` : '–'} | ${mem ? mib(mem.peakBytes) : '–'} | ${mem ? mib(mem.weightBytes + mem.kvBytes) : '–'} | ` +
          `${mem ? mib(mem.peakBytes - mem.weightBytes - mem.kvBytes) : '–'} |`,
      );
    }
  }
  const acceptance = demoAcceptance(report);
  const withStep = report.models.filter((m) => m.step);
  if (withStep.length && acceptance !== undefined) {
    lines.push(
      '',
      `Recycled decoding at real size, **computed, not measured**: random heads accept almost nothing, so these are the speed-ups over plain ` +
        `decoding that the measured costs above give at the demo head's measured acceptance (${(acceptance * 100).toFixed(0)}%, \`exact\` always drafting on ` +
        'demo-q8_0, below; a 4096-token vocabulary says little about 49k or 151k). A round is one 2-token pass plus one head guess: `fast` keeps ' +
        'both tokens, `exact` keeps the guess when the pass confirms it (adaptive `exact` stops drafting where that is below 1×). ' +
        'Both costs are taken at the same position (`stepCosts`, medians), so t(2)/t(1) differs a little from the table above.',
      '',
      `| model | t(2)/t(1) at position ${withStep[0]!.step!.position} | head ÷ pass | fast (computed) | exact (computed) |`,
      '| --- | ---: | ---: | ---: | ---: |',
    );
    for (const m of withStep) {
      const costs = { batch2: m.step!.batchRatio[2]!, headFraction: m.step!.headGuessMs / m.step!.fullPassMs };
      const speedup = computedSpeedup(costs, acceptance);
      lines.push(`| ${m.name} | ${fixed(costs.batch2, 2)} | ${fixed(costs.headFraction, 2)} | ${times(speedup.fast)} | ${times(speedup.exact)} |`);
    }
  }
  const inWorkerd = report.models.filter((m) => engine(m, OURS_WORKERD) || m.coldStart);
  if (inWorkerd.length) {
    lines.push(
      '',
      'In workerd (Miniflare, local R2): the peak resident memory of the workerd process serving the benchmark Worker (the isolate with the model ' +
        'in it; a deployed Worker has 128 MB), and for the smallest model the cold start of the product\'s Worker: workerd starting until it ' +
        'accepts requests, then the first request (model streamed from R2 into the engine, prefill, one token). ' +
        'A model the product Worker refuses at its default `MEMORY_LIMIT_MB` (128) is marked so and measured with the limit lifted.',
      '',
      '| model | peak workerd RSS MiB | cold start: ready ms | first request ms (prompt tokens) | peak RSS after cold start MiB | fits 128 MB |',
      '| --- | ---: | ---: | ---: | ---: | :---: |',
    );
    for (const m of inWorkerd) {
      const c = m.coldStart;
      const fits = c ? (c.refused ? `no: ${/needs about [\d.]+ MB/.exec(c.refused)?.[0] ?? 'refused'}` : 'yes') : '–';
      lines.push(
        `| ${m.name} | ${fixed(engine(m, OURS_WORKERD)?.peakRssMiB, 0)} | ${fixed(c?.readyMs, 0)} | ${c ? `${c.firstTokenMs.toFixed(0)} (${c.promptTokens})` : '–'} | ${fixed(c?.peakRssMiB, 0)} | ${fits} |`,
      );
    }
  }
  for (const r of report.runtimes) lines.push('', renderRuntimes(r));
  if (report.recycle.length > 0) lines.push('', renderRecycle(report.recycle));
  return lines.join('\n');
}

function overOurs(model: ModelReport, e: EngineReport, pick: (x: EngineReport) => Rate, cpu: boolean): string {
  const ours = engine(model, OURS);
  if (!ours) return '–';
  const rate = (x: EngineReport) => (cpu ? pick(x).cpuTokensPerSecond : pick(x).tokensPerSecond);
  return times(rate(e) / rate(ours));
}

export function renderRuntimes(r: RuntimeComparison): string {
  const base = r.figures[0]!;
  const what =
    r.app === 'probe'
      ? `The bare engine (random weights of the ${r.shape} shape written into its memory, ${r.type}, no SDK)`
      : `The SDK (loadModel → generate on the ${r.shape}-${r.type} bench file)`;
  const lines = [
    `${what} served by Node and by workerd with the V8 flags and inspector sessions shown (\`bench/workerd/compare.ts --app ${r.app}\`), ` +
      `measured from outside by the serving process's CPU time, best of interleaved rounds (load ${load(r.measured)}). ` +
      'The inside clock is the runtime\'s own (workerd\'s ticks in whole milliseconds).',
    '',
    '| runtime | kernels | decode ms/step | speed ÷ first row | inside clock ms/step | prefill tok/s | ÷ first row | t(2)/t(1) | t(4)/t(1) | relaxed SIMD |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |',
  ];
  for (const f of r.figures) {
    const ratio = (n: number) => (f.passMs[n] && f.passMs[1] ? (f.passMs[n]! / f.passMs[1]!).toFixed(2) : '–');
    lines.push(
      `| \`${f.runtime}\` | ${f.kernels ?? '–'} | ${f.decodeMs.toFixed(2)} | ${times(base.decodeMs / f.decodeMs)} | ${f.decodeInsideMs.toFixed(2)} | ${f.prefillTokensPerSecond ? f.prefillTokensPerSecond.toFixed(0) : '–'} | ` +
        `${f.prefillTokensPerSecond ? times(f.prefillTokensPerSecond / base.prefillTokensPerSecond) : '–'} | ${ratio(2)} | ${ratio(4)} | ` +
        `${f.relaxedSimd === undefined ? '–' : f.relaxedSimd ? 'yes' : 'no'} |`,
    );
  }
  return lines.join('\n');
}
