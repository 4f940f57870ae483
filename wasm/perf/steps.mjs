// A fixed amount of engine work for instruction counting (valgrind --tool=callgrind, see count.sh):
// loads FILE into the bare engine, then runs STEPS decode steps from position FROM, or (with PASS=k)
// STEPS passes of k tokens. Not a test.  node wasm/perf/steps.mjs FILE STEPS [WASM]
import { readFileSync } from 'node:fs';
import { loadIntoEngine } from './gguf.mjs';

const [path, steps, wasm = 'sdk/wasm/recyclegpt.wasm'] = process.argv.slice(2);
const from = Number(process.env.FROM ?? 64);
const pass = Number(process.env.PASS ?? 1);
// Rows that get logits start at LOGITS_FROM (default 0: every row, as a verifying pass; PASS for a prefill pass).
const logitsFrom = Number(process.env.LOGITS_FROM ?? 0);
const { instance } = await WebAssembly.instantiate(readFileSync(wasm));
const rg = instance.exports;
const { model } = loadIntoEngine(rg, path, { ctx: 1024, maxBatch: 32, kv: Number(process.env.KV ?? 1) });
const tokens = rg.rg_alloc(128) >>> 0;
new Uint32Array(rg.memory.buffer, tokens, 32).set(Array.from({ length: 32 }, (_, i) => 5 + i));
for (let i = 0; i < Number(steps); i++) {
  if (rg.rg_forward(model, tokens, pass, from + (pass === 1 ? i : 0), logitsFrom) !== 0) throw new Error('rg_forward');
}
