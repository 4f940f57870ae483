/**
 * `NODE_OPTIONS=--experimental-websocket npx tsx bench/workerd/profile.ts [--type q4_0] [--steps 64] [--runs 4]`:
 * where a decode step of the SDK goes in Node and in workerd, by V8's sampling CPU profiler (the same
 * DevTools-protocol Profiler domain in both; no debugger, so WebAssembly keeps its optimized code). Serves
 * sdk-handler.ts on the SmolLM2-shape bench model in each runtime, decodes, and prints self time by
 * function: the engine's WebAssembly functions, the SDK's JavaScript, garbage collection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchModelPath, type FileTypeName } from '../models.js';
import { promptIds } from '../prompt.js';
import { serve } from './runtimes.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time (ms) by function, from a sampled profile. */
export function selfTimes(profile: Profile): Map<string, number> {
  const names = new Map(profile.nodes.map((n) => [n.id, frameName(n.callFrame)]));
  const totals = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const name = names.get(id) ?? '?';
    totals.set(name, (totals.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return totals;
}

function frameName(frame: ProfileNode['callFrame']): string {
  const file = frame.url.split('/').pop() || '';
  if (/\.wasm|wasm:\/\//.test(frame.url) || /^\$?rg_|wasm-function/.test(frame.functionName)) return `wasm ${frame.functionName}`;
  if (!file) return frame.functionName || '(anonymous)';
  return `js ${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
}

const { values: opt } = parseArgs({
  options: { type: { type: 'string', default: 'q4_0' }, steps: { type: 'string', default: '64' }, runs: { type: 'string', default: '4' } },
});
const model = benchModelPath({ shape: 'smollm2-135m', fileType: opt.type!.toUpperCase() as FileTypeName }, console.log);
const ids = await promptIds(model);
const scratch = mkdtempSync(join(tmpdir(), 'rg-profile-'));
try {
  for (const kind of ['node', 'workerd'] as const) {
    const served = await serve({ kind, flags: [], inspector: [] }, 'sdk', scratch, dirname(model));
    try {
      await served.request('/load', { key: basename(model), contextLength: 1024 });
      for (let i = 0; i < 2; i++) await served.request('/run', { promptIds: ids, maxTokens: 16 }); // tier up
      const cdp = served.cdp!;
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
      await cdp.send('Profiler.start');
      let cpu = 0;
      for (let i = 0; i < Number(opt.runs); i++) cpu += (await served.request('/run', { promptIds: ids, maxTokens: Number(opt.steps) })).cpuMs;
      const { profile } = await cdp.send<{ profile: Profile }>('Profiler.stop');
      const times = [...selfTimes(profile)].sort((a, b) => b[1] - a[1]);
      const sampled = times.reduce((a, [, t]) => a + t, 0);
      const sum = (test: (name: string) => boolean) => times.filter(([n]) => test(n)).reduce((a, [, t]) => a + t, 0);
      console.log(`\n${kind}: ${opt.runs} runs of ${opt.steps} tokens, ${cpu.toFixed(0)} ms CPU of the process, ${sampled.toFixed(0)} ms sampled`);
      console.log(`  wasm ${sum((n) => n.startsWith('wasm')).toFixed(0)} ms, js ${sum((n) => n.startsWith('js')).toFixed(0)} ms, other ${sum((n) => !n.startsWith('wasm') && !n.startsWith('js')).toFixed(0)} ms`);
      for (const [name, ms] of times.slice(0, 14)) console.log(`  ${ms.toFixed(1).padStart(8)} ms  ${((100 * ms) / sampled).toFixed(1).padStart(5)}%  ${name}`);
    } finally {
      await served.stop();
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
