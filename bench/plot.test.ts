import { describe, expect, it } from 'vitest';
import { barChart, escapeXml, niceMax, renderPlot } from './plot.js';
import { REPORT_VERSION, type BenchReport } from './report.js';

/** Tags left open or closed out of order (a stack over <a>, </a> and <a/>); [] when well nested. */
function unbalancedTags(xml: string): string[] {
  const stack: string[] = [];
  const wrong: string[] = [];
  for (const [, close, name, selfClosing] of xml.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    if (selfClosing) continue;
    if (!close) stack.push(name!);
    else if (stack.pop() !== name) wrong.push(name!);
  }
  return [...wrong, ...stack];
}

describe('bench plot', () => {
  it('rounds axes up to 1, 2 or 5 × 10^k', () => {
    expect(niceMax(0.7)).toBe(1);
    expect(niceMax(1)).toBe(1);
    expect(niceMax(13)).toBe(20);
    expect(niceMax(420)).toBe(500);
    expect(niceMax(5001)).toBe(10000);
    expect(niceMax(0)).toBe(1);
  });

  it('escapes text for XML', () => {
    expect(escapeXml(`a<b & "c" 'd'>`)).toBe('a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;');
  });

  it('draws one bar per value, heights proportional to the values on a shared axis', () => {
    const svg = barChart('t', [{ label: 'g1', bars: [{ series: 'ours', value: 10 }, { series: 'llama.cpp', value: 20 }] }, { label: 'g2', bars: [{ series: 'ours', value: 5 }] }], 0, 0, 400, 200);
    const heights = [...svg.matchAll(/<rect [^>]*height="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(heights).toHaveLength(3);
    expect(heights[1]! / heights[0]!).toBeCloseTo(2, 1);
    expect(heights[2]! / heights[0]!).toBeCloseTo(0.5, 1);
    expect(svg).toContain('>g1</text>');
  });

  it('renders a well-formed document with every model and the speed-up panel when an acceptance is known', () => {
    const rate = (v: number) => ({ tokensPerSecond: v, cpuTokensPerSecond: v });
    const measured = { date: 'd', loadAverageBefore: [0], loadAverageAfter: [0] };
    const engine = (name: string, v: number) => ({ engine: name, description: '', decode: rate(v), prefill: rate(3 * v), runs: [], deterministic: true, measured });
    const step = { fullPassMs: 10, outputHeadMs: 2, attentionMs: 1, position: 256, rest: 7, headGuessMs: 2, greedySampleMs: 0.1, topKSampleMs: 0.2, batchRatio: { 2: 1.2, 3: 1.5, 4: 1.9 } };
    const report: BenchReport = {
      version: REPORT_VERSION,
      machine: { cpu: 'c', cores: 2, node: 'v20', platform: 'p' },
      method: { threads: 1, sampling: 'greedy', timedRuns: 1, statistic: 's' },
      models: ['a<1>', 'b'].map((name) => ({
        name, label: name, file: '', parameters: 1, bytes: 1, tensorTypes: {}, decodePromptTokens: 1, decodeTokens: 1, prefillTokens: 512,
        engines: [engine('ours', 30), engine('llama.cpp', 60), engine('wllama', 6)],
        step: { ...step, measured },
      })),
      recycle: [{ model: 'demo', prompts: 1, decodeTokens: 1, rounds: 1, step, modes: [{ mode: 'exact, always drafting', decodeTokensPerSecond: 1, overOff: 1, tokensPerPass: 1.6, acceptanceRate: 0.6, identicalToOff: true }] }],
      runtimes: [],
    };
    const svg = renderPlot(report);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('a&lt;1&gt;');
    expect(svg).not.toContain('a<1>');
    expect(svg).toContain('acceptance 60%');
    // 2 models × 3 engines × (decode + prefill) bars.
    expect([...svg.matchAll(/<rect [^>]*><title>/g)]).toHaveLength(12);
    // One point per model per mode on the speed-up panel.
    expect([...svg.matchAll(/<circle /g)]).toHaveLength(4);
    expect(unbalancedTags(svg)).toEqual([]);
  });
});
