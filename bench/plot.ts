/**
 * The benchmark's picture (bench/results/bench.svg, shown by bench/README.md), hand-written SVG:
 *  - decode and prefill tokens/s per model, one bar per engine (ours, ours in workerd, llama.cpp, wllama);
 *  - recycled decoding's computed speed-up against t(2)/t(1): the curves 2/(c + h) (fast) and (1 + a)/(c + h)
 *    (exact) at the models' mean head cost h, and each model at its measured t(2)/t(1).
 */
import { OURS, OURS_WORKERD, NATIVE, WLLAMA, demoAcceptance, type BenchReport, type ModelReport } from './report.js';
import { computedSpeedup } from './recycle.js';

const ENGINES = [OURS, OURS_WORKERD, NATIVE, WLLAMA];
const COLORS: Record<string, string> = { [OURS]: '#2f6fdf', [OURS_WORKERD]: '#8fb3f0', [NATIVE]: '#d9822b', [WLLAMA]: '#7a7a7a' };
const FONT = 'font-family="system-ui, sans-serif" font-size="12"';

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A "nice" upper bound for an axis: 1, 2 or 5 × 10^k at or above `max`. */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  return ([1, 2, 5, 10].find((m) => m * power >= max) ?? 10) * power;
}

export interface BarGroup {
  label: string;
  bars: Array<{ series: string; value: number }>;
}

/** Grouped vertical bars in a box of `width` × `height` at (x, y); returns SVG elements. */
export function barChart(title: string, groups: BarGroup[], x: number, y: number, width: number, height: number): string {
  const top = y + 24;
  const bottom = y + height - 40;
  const left = x + 48;
  const max = niceMax(Math.max(...groups.flatMap((g) => g.bars.map((b) => b.value))));
  const scale = (v: number) => ((bottom - top) * v) / max;
  const parts = [`<text x="${x + width / 2}" y="${y + 14}" text-anchor="middle" ${FONT} font-weight="bold">${escapeXml(title)}</text>`];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    const gy = bottom - scale(v);
    parts.push(`<line x1="${left}" x2="${x + width}" y1="${gy}" y2="${gy}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 4}" y="${gy + 4}" text-anchor="end" ${FONT}>${v >= 10 ? v.toFixed(0) : v.toFixed(1)}</text>`);
  }
  const groupWidth = (x + width - left) / Math.max(groups.length, 1);
  groups.forEach((group, g) => {
    const barWidth = (groupWidth * 0.8) / Math.max(group.bars.length, 1);
    group.bars.forEach((bar, b) => {
      const h = scale(bar.value);
      const bx = left + g * groupWidth + groupWidth * 0.1 + b * barWidth;
      parts.push(
        `<rect x="${bx.toFixed(1)}" y="${(bottom - h).toFixed(1)}" width="${(barWidth - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[bar.series] ?? '#444'}">` +
          `<title>${escapeXml(`${group.label} · ${bar.series}: ${bar.value.toFixed(1)}`)}</title></rect>`,
      );
    });
    parts.push(`<text x="${(left + (g + 0.5) * groupWidth).toFixed(1)}" y="${bottom + 16}" text-anchor="middle" ${FONT}>${escapeXml(group.label)}</text>`);
  });
  return parts.join('\n');
}

function legend(series: string[], x: number, y: number): string {
  return series
    .map((s, i) => `<rect x="${x + i * 150}" y="${y}" width="12" height="12" fill="${COLORS[s]}"/><text x="${x + i * 150 + 16}" y="${y + 11}" ${FONT}>${escapeXml(s)}</text>`)
    .join('\n');
}

function rateGroups(models: ModelReport[], pick: 'decode' | 'prefill'): BarGroup[] {
  return models.map((m) => ({
    label: m.name,
    bars: ENGINES.flatMap((name) => {
      const e = m.engines.find((x) => x.engine === name);
      return e ? [{ series: name, value: e[pick].tokensPerSecond }] : [];
    }),
  }));
}

/** Speed-up against t(2)/t(1) at head cost h and acceptance a, with the models' own points. */
function speedupChart(models: ModelReport[], acceptance: number, x: number, y: number, width: number, height: number): string {
  const points = models.filter((m) => m.step).map((m) => ({ name: m.name, c: m.step!.batchRatio[2]!, h: m.step!.headGuessMs / m.step!.fullPassMs }));
  const h = points.length ? points.reduce((a, p) => a + p.h, 0) / points.length : 0.2;
  const left = x + 48;
  const right = x + width - 10;
  const top = y + 24;
  const bottom = y + height - 40;
  const [cMin, cMax, sMax] = [1, 2, 2];
  const px = (c: number) => left + ((c - cMin) / (cMax - cMin)) * (right - left);
  const py = (s: number) => bottom - (s / sMax) * (bottom - top);
  const parts = [
    `<text x="${x + width / 2}" y="${y + 14}" text-anchor="middle" ${FONT} font-weight="bold">Recycled decoding, computed: speed-up over plain decoding vs t(2)/t(1) (head ${h.toFixed(2)} of a pass, acceptance ${(acceptance * 100).toFixed(0)}%)</text>`,
  ];
  for (const s of [0, 0.5, 1, 1.5, 2]) {
    parts.push(`<line x1="${left}" x2="${right}" y1="${py(s)}" y2="${py(s)}" stroke="${s === 1 ? '#999' : '#ddd'}"/>`);
    parts.push(`<text x="${left - 4}" y="${py(s) + 4}" text-anchor="end" ${FONT}>${s.toFixed(1)}×</text>`);
  }
  for (const c of [1, 1.25, 1.5, 1.75, 2]) parts.push(`<text x="${px(c)}" y="${bottom + 16}" text-anchor="middle" ${FONT}>${c.toFixed(2)}</text>`);
  parts.push(`<text x="${(left + right) / 2}" y="${bottom + 32}" text-anchor="middle" ${FONT}>t(2)/t(1): cost of a 2-token pass over a 1-token pass</text>`);
  for (const [mode, color] of [['fast', '#2f6fdf'], ['exact', '#1a9a5a']] as const) {
    const path = Array.from({ length: 21 }, (_, i) => {
      const c = cMin + ((cMax - cMin) * i) / 20;
      return `${i ? 'L' : 'M'}${px(c).toFixed(1)},${py(computedSpeedup({ batch2: c, headFraction: h }, acceptance)[mode]).toFixed(1)}`;
    }).join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="2"><title>${mode}</title></path>`);
    parts.push(`<text x="${left + 6}" y="${py(computedSpeedup({ batch2: cMin, headFraction: h }, acceptance)[mode]) - 6}" ${FONT} fill="${color}">${mode}</text>`);
    for (const p of points) {
      const s = computedSpeedup({ batch2: p.c, headFraction: p.h }, acceptance)[mode];
      parts.push(`<circle cx="${px(Math.min(Math.max(p.c, cMin), cMax)).toFixed(1)}" cy="${py(Math.min(s, sMax)).toFixed(1)}" r="4" fill="${color}"><title>${escapeXml(`${p.name} ${mode}: t(2)/t(1) ${p.c.toFixed(2)}, head ${p.h.toFixed(2)}, ${s.toFixed(2)}×`)}</title></circle>`);
    }
  }
  return parts.join('\n');
}

export function renderPlot(report: BenchReport): string {
  const width = 960;
  const models = report.models.filter((m) => m.engines.length);
  const acceptance = demoAcceptance(report);
  const withSpeedup = acceptance !== undefined && models.some((m) => m.step);
  const height = withSpeedup ? 840 : 560;
  const series = ENGINES.filter((name) => models.some((m) => m.engines.some((e) => e.engine === name)));
  const body = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    legend(series, 60, 8),
    barChart('Decode, tokens/s (one thread)', rateGroups(models, 'decode'), 0, 30, width, 260),
    barChart('Prefill of a 512-token prompt, tokens/s (one thread)', rateGroups(models, 'prefill'), 0, 295, width, 260),
    ...(withSpeedup ? [speedupChart(models, acceptance, 0, 565, width, 270)] : []),
  ];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n${body.join('\n')}\n</svg>\n`;
}
