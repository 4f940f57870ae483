/**
 * `npx tsx bench/workerd/compare.ts [--shape S] [--type T] [--rounds N] [--steps N] [--prefill N] [--sizes 1,2]
 *  [--runtime 'node --flag' …]`: the bare-forward probe in Node and workerd with chosen V8 flags, side by
 * side (see runtimes.ts). Default runtimes: Node and workerd as they start, and each with the flags that
 * test the explanations for workerd's slower WebAssembly. Prints a table; asserts nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compareRuntimes, type Runtime } from './runtimes.js';

export const DEFAULT_RUNTIMES = [
  'node',
  'node --wasm-enforce-bounds-checks',
  'node --no-wasm-bounds-checks',
  'node --liftoff-only',
  'workerd',
  'workerd --no-wasm-bounds-checks',
  'workerd --liftoff-only',
];

/**
 * 'node --v8-flag …' or 'workerd --v8-flag … [+inspector=Runtime.enable,Network.enable] [+serve=--debug-port=…]'
 * → a Runtime: V8 flags, an attached inspector client and the methods it sends, more `workerd serve` options.
 */
export function parseRuntime(spec: string): Runtime {
  const [kind, ...words] = spec.trim().split(/\s+/);
  if (kind !== 'node' && kind !== 'workerd') throw new Error(`runtime '${spec}' must start with node or workerd`);
  const runtime: Runtime = { kind, flags: words.filter((w) => !w.startsWith('+')) };
  for (const word of words.filter((w) => w.startsWith('+'))) {
    if (kind !== 'workerd') throw new Error(`runtime '${spec}': ${word} is for workerd`);
    const [option, value = ''] = word.slice(1).split(/=(.*)/s);
    if (option === 'inspector') runtime.inspector = value.split(',').filter(Boolean);
    else if (option === 'serve') (runtime.serveArgs ??= []).push(value);
    else throw new Error(`runtime '${spec}': unknown option ${word}`);
  }
  return runtime;
}

const { values: opt } = parseArgs({
  options: {
    shape: { type: 'string', default: 'smollm2-135m' },
    type: { type: 'string', default: 'q8_0' },
    rounds: { type: 'string', default: '5' },
    steps: { type: 'string', default: '32' },
    prefill: { type: 'string', default: '512' },
    sizes: { type: 'string', default: '1,2,3,4' },
    runtime: { type: 'string', multiple: true },
  },
});
const scratchDir = mkdtempSync(join(tmpdir(), 'rg-probe-'));
try {
  const figures = await compareRuntimes({
    shape: opt.shape!,
    type: opt.type!,
    runtimes: (opt.runtime ?? DEFAULT_RUNTIMES).map(parseRuntime),
    rounds: Number(opt.rounds),
    steps: Number(opt.steps),
    prefill: Number(opt.prefill),
    sizes: opt.sizes ? opt.sizes.split(',').map(Number) : [],
    scratchDir,
    log: console.log,
  });
  const base = figures[0]!;
  console.log(`\n${opt.shape} ${opt.type}: CPU time of the serving process, best of ${opt.rounds} interleaved rounds`);
  console.log('| runtime | decode ms/step | ÷ first (speed) | inside clock ms/step | prefill tok/s | ÷ first | t(2)/t(1) | t(4)/t(1) | WASM memory |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const f of figures) {
    const ratio = (n: number) => (f.passMs[n] && f.passMs[1] ? (f.passMs[n]! / f.passMs[1]!).toFixed(2) : '–');
    console.log(
      `| ${f.runtime} | ${f.decodeMs.toFixed(2)} | ${(base.decodeMs / f.decodeMs).toFixed(2)}× | ${f.decodeInsideMs.toFixed(2)} | ` +
        `${f.prefillTokensPerSecond.toFixed(0)} | ${(f.prefillTokensPerSecond / base.prefillTokensPerSecond).toFixed(2)}× | ${ratio(2)} | ${ratio(4)} | ${(f.memoryBytes / 2 ** 20).toFixed(0)} MiB |`,
    );
  }
} finally {
  rmSync(scratchDir, { recursive: true, force: true });
}
