import { describe, expect, it } from 'vitest';
import { computedSpeedup } from './recycle.js';
import { isProvisional, mergeReports, oursOver, renderMarkdown, REPORT_VERSION, type BenchReport, type EngineReport, type ModelReport } from './report.js';

const quiet = { date: '2026-12-01T00:00:00.000Z', loadAverageBefore: [0.1, 0.1, 0.1], loadAverageAfter: [0.2, 0.1, 0.1] };
const busy = { ...quiet, loadAverageAfter: [3.5, 2, 1] };

function row(engine: string, decode: number, prefill: number, cpuDecode = decode, cpuPrefill = prefill): EngineReport {
  const rate = (tokensPerSecond: number, cpuTokensPerSecond: number) => ({ tokensPerSecond, cpuTokensPerSecond });
  const decodeRate = rate(decode, cpuDecode);
  const prefillRate = rate(prefill, cpuPrefill);
  return { engine, description: engine, decode: decodeRate, prefill: prefillRate, runs: [{ decode: decodeRate, prefill: prefillRate }], deterministic: true, measured: quiet };
}

function model(name: string, engines: EngineReport[]): ModelReport {
  return { name, label: name, file: `${name}.gguf`, parameters: 1, bytes: 1, tensorTypes: {}, decodePromptTokens: 8, decodeTokens: 128, prefillTokens: 512, engines };
}

function report(models: ModelReport[]): BenchReport {
  return {
    version: REPORT_VERSION,
    machine: { cpu: 'Test CPU', cores: 2, node: 'v20', platform: 'linux', llamaCpuBuild: 'zen4' },
    method: { threads: 1, sampling: 'greedy', timedRuns: 3, statistic: 'best of 3' },
    models,
    recycle: [],
    runtimes: [],
  };
}

describe('bench report', () => {
  const m = model('m-q8_0', [row('ours', 30, 100, 40, 120), row('llama.cpp', 60, 400, 50, 400), row('wllama', 5, 10), row('ours in workerd', 27, 90)]);

  it('gives ours ÷ each engine by either clock', () => {
    expect(oursOver(m, 'llama.cpp', (e) => e.decode)).toBeCloseTo(0.5);
    expect(oursOver(m, 'llama.cpp', (e) => e.decode, true)).toBeCloseTo(0.8);
    expect(oursOver(m, 'llama.cpp', (e) => e.prefill, true)).toBeCloseTo(0.3);
    expect(oursOver(m, 'wllama', (e) => e.decode)).toBeCloseTo(6);
    expect(oursOver(m, 'nobody', (e) => e.decode)).toBeUndefined();
  });

  it('renders a row per engine with its ratios, workerd against ours in Node, and names the llama.cpp build', () => {
    const text = renderMarkdown(report([m]));
    expect(text).toContain('`libggml-cpu-zen4.so`');
    expect(text).toContain('| m-q8_0 | llama.cpp | 60.0 | 400.0 | 0.50× | 0.25× | 0.80× | 0.30× |');
    expect(text).toContain('| m-q8_0 | wllama | 5.0 | 10.0 | 6.00× | 10.00× | 8.00× | 12.00× |');
    expect(text).toContain('| m-q8_0 | ours in workerd | 27.0 | 90.0 | 0.90× | 0.90× | 0.68× | 0.75× |');
    expect(text).not.toContain('Provisional');
  });

  it('gives ours in workerd ÷ llama.cpp and wllama by CPU time, with the kernels workerd ran', () => {
    const workerd = { ...row('ours in workerd', 27, 90), description: 'the same SDK and engine (relaxed kernels) in a Worker' };
    const text = renderMarkdown(report([model('m-q4_0', [row('ours', 30, 100), row('llama.cpp', 60, 400, 54, 300), row('wllama', 5, 10), workerd])]));
    expect(text).toContain('| m-q4_0 | relaxed | 0.50× | 0.30× | 5.40× | 9.00× |');
  });

  it('marks figures taken while other jobs loaded the CPU as provisional', () => {
    expect(isProvisional([quiet], 2)).toBe(false);
    expect(isProvisional([quiet, busy], 2)).toBe(true);
    const loaded = model('m', [{ ...row('ours', 1, 1), measured: busy }]);
    expect(renderMarkdown(report([loaded]))).toContain('**Provisional**');
  });

  it("says which models the product Worker refuses at a deployed isolate's 128 MB", () => {
    const cold = (refused?: string) => ({ readyMs: 2000, firstTokenMs: 5000, promptTokens: 85, peakRssMiB: 250, measured: quiet, ...(refused ? { refused } : {}) });
    const text = renderMarkdown(
      report([
        { ...model('small', [row('ours', 1, 1)]), coldStart: cold() },
        { ...model('big', [row('ours', 1, 1)]), coldStart: cold('The model needs about 162 MB (138 MB of weights), more than the 128 MB a Worker may use (MEMORY_LIMIT_MB).') },
      ]),
    );
    expect(text).toContain('| small | – | 2000 | 5000 (85) | 250 | yes |');
    expect(text).toContain('| big | – | 2000 | 5000 (85) | 250 | no: needs about 162 MB |');
  });

  it('merges a partial rerun: measured engines and models replace their old rows, the rest stay', () => {
    const before = report([m, model('other', [row('ours', 1, 1)])]);
    const rerun = report([model('m-q8_0', [row('llama.cpp', 70, 500)])]);
    const merged = mergeReports(before, rerun);
    expect(merged.models.map((x) => x.name)).toEqual(['m-q8_0', 'other']);
    const engines = merged.models[0]!.engines;
    expect(engines.map((e) => e.engine).sort()).toEqual(['llama.cpp', 'ours', 'ours in workerd', 'wllama']);
    expect(engines.find((e) => e.engine === 'llama.cpp')!.decode.tokensPerSecond).toBe(70);
    expect(mergeReports({ ...before, version: 1 as never }, rerun)).toBe(rerun);
    // A rerun of other parts only (no engine rows) keeps the token counts the engine rows were measured with.
    const costsOnly = report([{ ...model('m-q8_0', []), decodeTokens: 64 }]);
    expect(mergeReports(before, costsOnly).models[0]!.decodeTokens).toBe(128);
  });
});

describe('computed recycle speed-up', () => {
  it('is 2 tokens (fast) or 1 + acceptance (exact) per round of a 2-token pass and a head guess', () => {
    // The figures issue #11 works through: t(2)/t(1) 1.13, head 0.24 of a pass, 65% acceptance.
    const { fast, exact } = computedSpeedup({ batch2: 1.13, headFraction: 0.24 }, 0.65);
    expect(fast).toBeCloseTo(2 / 1.37);
    expect(exact).toBeCloseTo(1.65 / 1.37);
    expect(computedSpeedup({ batch2: 1, headFraction: 0 }, 1)).toEqual({ fast: 2, exact: 2 });
  });
});
