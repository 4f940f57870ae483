// Bare forward passes of sdk/wasm/recyclegpt.wasm on a random model of a named shape, in Node.
// Not a test. The same probe runs inside workerd (bench/workerd/), so V8 flags can be compared:
//   node [--wasm-enforce-bounds-checks | --no-liftoff | …] wasm/bench-forward.mjs [options] [types…]
// Options: --shape NAME (bench/forward/shapes.mjs; default smollm2-135m), --steps N (decode steps a
// round, default 32), --prefill N (prompt tokens, default 512; 0 skips), --sizes 1,2,3,4 (n-token
// passes; '' skips), --wasm PATH (another build), --wall (wall clock instead of this process's CPU
// time), --json. Types: q8_0 q4_0 q5_0 q4_k q6_k f16 f32 (default q8_0 q4_0; the K-quants need rows of a multiple of 256: --shape qwen3-0.6b or matvec-dram).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { buildRandomModel, freeModel, timeDecode, timePasses, timePrefill } from '../bench/forward/core.mjs';
import { SHAPES } from '../bench/forward/shapes.mjs';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    shape: { type: 'string', default: 'smollm2-135m' },
    steps: { type: 'string', default: '32' },
    prefill: { type: 'string', default: '512' },
    sizes: { type: 'string', default: '1,2,3,4' },
    wasm: { type: 'string' },
    wall: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const shape = SHAPES[opt.shape];
if (!shape) throw new Error(`unknown shape '${opt.shape}'; one of ${Object.keys(SHAPES).join(', ')}`);
const sizes = opt.sizes ? opt.sizes.split(',').map(Number) : [];
const prefill = Number(opt.prefill);
// CPU time of this process by default: other processes on a shared machine skew the wall clock.
const clock = opt.wall ? () => performance.now() : () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

const wasmPath = opt.wasm ?? new URL('../sdk/wasm/recyclegpt.wasm', import.meta.url);
const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath));
const rg = instance.exports;

const results = [];
for (const type of positionals.length ? positionals : ['q8_0', 'q4_0']) {
  const probe = buildRandomModel(rg, shape, type, { ctx: Math.max(1024, prefill + 64), maxBatch: 32 });
  const decode = timeDecode(rg, probe, { steps: Number(opt.steps), clock });
  const prefillMs = prefill > 0 ? timePrefill(rg, probe, { n: prefill, clock }).ms : undefined;
  const passes = sizes.length ? timePasses(rg, probe, { sizes, clock }) : {};
  freeModel(rg, probe);
  const result = { shape: opt.shape, type, params: probe.params, weightBytes: probe.weightBytes, decodeMs: decode.msPerStep, prefillMs, passes, memoryBytes: rg.memory.buffer.byteLength };
  results.push(result);
  if (opt.json) continue;
  let line = `${opt.shape} ${type}: ${(probe.params / 1e6).toFixed(1)}M params, decode ${(1000 / decode.msPerStep).toFixed(1)} tok/s (${decode.msPerStep.toFixed(2)} ms/step)`;
  if (prefillMs !== undefined) line += `, prefill ${prefill} tokens ${((prefill * 1000) / prefillMs).toFixed(1)} tok/s`;
  if (sizes.length) line += `\n  n-token passes at position 64: ${sizes.map((n) => `t(${n}) ${passes[n].toFixed(2)} ms ×${(passes[n] / passes[sizes[0]]).toFixed(2)}`).join(', ')}`;
  console.log(`${line}  [${opt.wall ? 'wall' : 'cpu'} clock]`);
}
if (opt.json) console.log(JSON.stringify(results));
