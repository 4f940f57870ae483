/**
 * `NODE_OPTIONS=--experimental-websocket npx tsx bench/workerd/compare.ts [--app probe|sdk] [--shape S] [--type T]
 *  [--rounds N] [--steps N] [--prefill N] [--sizes 1,2] [--from N] [--runtime 'node --flag' …]`: the bare engine (probe) or the
 * SDK (sdk, on the bench GGUF of that shape and type) in Node and in workerd with chosen V8 flags, side by side
 * (see runtimes.ts). Default runtimes: both as they start, and each with the flags and settings that test the
 * explanations for workerd's slower WebAssembly. `+engine=relaxed|simd128` picks the engine module: SIMD128 against
 * relaxed SIMD in workerd is `--runtime workerd --runtime 'workerd +engine=relaxed'`. Prints a markdown table (with
 * the kernels each row ran); asserts nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import os from 'node:os';
import type { ShapeName } from '../forward/shapes.mjs';
import { FILE_TYPES, benchModelPath, type FileTypeName } from '../models.js';
import { promptIds } from '../prompt.js';
import { renderRuntimes } from '../report.js';
import { compareRuntimes, type App, type Runtime } from './runtimes.js';

export const DEFAULT_RUNTIMES = [
  'node',
  'node --wasm-enforce-bounds-checks',
  'node --no-wasm-bounds-checks',
  'node --liftoff-only',
  'workerd',
  'workerd +engine=relaxed',
  'workerd --no-wasm-bounds-checks',
  'workerd --liftoff-only',
  'workerd +inspector=Runtime.enable,Network.enable',
  'workerd +inspector=Debugger.enable',
];

/**
 * 'node --v8-flag … [+inspector=…] [+engine=relaxed]' or 'workerd --v8-flag … [+inspector=Runtime.enable,Network.enable]
 * [+serve=--debug-port=…] [+engine=relaxed|simd128]' → a Runtime: V8 flags, an attached inspector client and the methods
 * it sends, more `workerd serve` options, the engine module.
 */
export function parseRuntime(spec: string): Runtime {
  const [kind, ...words] = spec.trim().split(/\s+/);
  if (kind !== 'node' && kind !== 'workerd') throw new Error(`runtime '${spec}' must start with node or workerd`);
  const runtime: Runtime = { kind, flags: words.filter((w) => !w.startsWith('+')) };
  for (const word of words.filter((w) => w.startsWith('+'))) {
    const [option, value = ''] = word.slice(1).split(/=(.*)/s);
    if (option === 'serve' && kind !== 'workerd') throw new Error(`runtime '${spec}': +serve is for workerd`);
    if (option === 'inspector') runtime.inspector = value.split(',').filter(Boolean);
    else if (option === 'serve') (runtime.serveArgs ??= []).push(value);
    else if (option === 'engine') {
      if (value !== 'relaxed' && value !== 'simd128') throw new Error(`runtime '${spec}': +engine is relaxed or simd128`);
      runtime.engine = value;
    }
    else throw new Error(`runtime '${spec}': unknown option ${word}`);
  }
  return runtime;
}

const { values: opt } = parseArgs({
  options: {
    app: { type: 'string', default: 'probe' },
    shape: { type: 'string', default: 'smollm2-135m' },
    type: { type: 'string', default: 'q4_0' },
    rounds: { type: 'string', default: '5' },
    steps: { type: 'string', default: '32' },
    prefill: { type: 'string', default: '256' },
    sizes: { type: 'string', default: '1,2,4' },
    from: { type: 'string', default: '0' },
    runtime: { type: 'string', multiple: true },
  },
});
if (opt.app !== 'probe' && opt.app !== 'sdk') throw new Error(`--app is probe or sdk, not ${opt.app}`);
const app: App = opt.app;
const shape = opt.shape as ShapeName;
const fileType = opt.type!.toUpperCase() as FileTypeName;
if (app === 'sdk' && !FILE_TYPES[fileType]) throw new Error(`--type for the SDK is one of ${Object.keys(FILE_TYPES).join(', ')}`);
const modelPath = app === 'sdk' ? benchModelPath({ shape, fileType }, console.log) : undefined;
const scratchDir = mkdtempSync(join(tmpdir(), 'rg-runtimes-'));
try {
  const before = os.loadavg();
  const figures = await compareRuntimes({
    app,
    shape,
    type: opt.type!,
    runtimes: (opt.runtime ?? DEFAULT_RUNTIMES).map(parseRuntime),
    rounds: Number(opt.rounds),
    steps: Number(opt.steps),
    prefill: Number(opt.prefill),
    sizes: opt.sizes ? opt.sizes.split(',').map(Number) : [],
    from: Number(opt.from),
    modelPath,
    promptIds: modelPath ? await promptIds(modelPath) : undefined,
    scratchDir,
    log: console.log,
  });
  const measured = { date: new Date().toISOString(), loadAverageBefore: before, loadAverageAfter: os.loadavg() };
  console.log(`\n${renderRuntimes({ app, shape, type: opt.type!, figures, measured })}`);
} finally {
  rmSync(scratchDir, { recursive: true, force: true });
}
