// The engine (bare C ABI) against native llama.cpp (node-llama-cpp, threads 1, flash attention off, f16 KV
// cache) on the same GGUF, in one process, rounds interleaved; each figure is the fastest round by process
// CPU time (the machine is shared: the minimum shrugs off other processes). Not a test, not the bench.
//
// node wasm/perf/compare.mjs FILE.gguf [--steps 32] [--from 64] [--prefill 512] [--rounds 5] [--sizes 1,2,3,4]
//   [--wasm sdk/wasm/recyclegpt.wasm] [--wasm2 other.wasm] [--native 0] [--only decode,prefill,passes]
// --wasm2 times a second build in the same rounds (A/B). Files: python3 wasm/perf/models.py.
import { readFileSync } from 'node:fs';
import { loadIntoEngine, typeMix } from './gguf.mjs';

const args = process.argv.slice(2);
const path = args[0];
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const steps = Number(opt('steps', 32));
const from = Number(opt('from', 64));
const prefillN = Number(opt('prefill', 512));
const rounds = Number(opt('rounds', 5));
const sizes = opt('sizes', '1,2,3,4').split(',').map(Number);
const only = opt('only', 'decode,prefill,passes').split(',');
const maxBatch = Number(opt('batch', 32));
const ctx = Math.max(1024, prefillN + 64);
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

async function ours(wasmPath) {
  const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath));
  const rg = instance.exports;
  const { model, cfg, gguf } = loadIntoEngine(rg, path, { ctx, maxBatch, kv: Number(opt('kv', 1)) });
  const tokens = rg.rg_alloc(4 * maxBatch) >>> 0;
  const forward = (ids, pos, logitsFrom) => {
    new Uint32Array(rg.memory.buffer, tokens, ids.length).set(ids);
    if (rg.rg_forward(model, tokens, ids.length, pos, logitsFrom) !== 0) throw new Error(`rg_forward: ${rg.rg_last_error()}`);
  };
  const argmax = () => {
    const logits = new Float32Array(rg.memory.buffer, rg.rg_logits(model) >>> 0, cfg.vocab);
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  };
  const prompt = (n) => Array.from({ length: n }, (_, i) => 3 + ((i * 7919) % 2000));
  const prefill = (ids) => {
    for (let at = 0; at < ids.length; at += maxBatch) {
      const chunk = ids.slice(at, at + maxBatch);
      forward(chunk, at, at + chunk.length === ids.length ? chunk.length - 1 : chunk.length);
    }
  };
  return {
    name: wasmPath.split('/').pop(), cfg, mix: typeMix(gguf),
    async decode() {
      prefill(prompt(from));
      let token = 5;
      const t0 = cpu();
      for (let i = 0; i < steps; i++) {
        forward([token], from + i, 0);
        token = argmax();
      }
      return (cpu() - t0) / steps;
    },
    async prefill() {
      const ids = prompt(prefillN);
      const t0 = cpu();
      prefill(ids);
      return cpu() - t0;
    },
    async pass(n) {
      const ids = prompt(n);
      forward(ids, from, 0);
      const t0 = cpu();
      for (let k = 0; k < 10; k++) forward(ids, from, 0);
      return (cpu() - t0) / 10;
    },
  };
}

async function native() {
  const { getLlama, LlamaLogLevel } = await import('../../tools/peers/node_modules/node-llama-cpp/dist/index.js');
  const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error, build: 'never', usePrebuiltBinaries: true, maxThreads: 1 });
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: false });
  const context = await model.createContext({ contextSize: ctx, batchSize: 512, threads: 1, sequences: 1, flashAttention: false });
  const seq = context.getSequence();
  const prompt = (n) => Array.from({ length: n }, (_, i) => 3 + ((i * 7919) % 2000));
  return {
    name: 'llama.cpp',
    async decode() {
      await seq.clearHistory();
      await seq.evaluateWithoutGeneratingNewTokens(prompt(from));
      let k = 0;
      const t0 = cpu();
      for await (const _ of seq.evaluate([5], { temperature: 0, yieldEogToken: true })) if (++k === steps) break;
      return (cpu() - t0) / steps;
    },
    async prefill() {
      await seq.clearHistory();
      const t0 = cpu();
      await seq.evaluateWithoutGeneratingNewTokens(prompt(prefillN));
      return cpu() - t0;
    },
  };
}

const engines = [await ours(opt('wasm', 'sdk/wasm/recyclegpt.wasm'))];
if (opt('wasm2')) engines.push(await ours(opt('wasm2')));
if (opt('native', '1') !== '0') engines.push(await native());
console.log(`${path}: ${engines[0].mix}; decode ${steps} steps from ${from}, prefill ${prefillN} (batches of ${maxBatch}), ${rounds} rounds, CPU ms`);

const best = {};
const keep = (key, v) => (best[key] = Math.min(best[key] ?? Infinity, v));
for (let r = 0; r < rounds; r++) {
  for (const e of engines) {
    if (only.includes('decode')) keep(`${e.name} decode`, await e.decode());
    if (only.includes('prefill')) keep(`${e.name} prefill`, await e.prefill());
    if (only.includes('passes') && e.pass) for (const n of sizes) keep(`${e.name} t(${n})`, await e.pass(n));
  }
}
const base = engines.at(-1).name;
for (const e of engines) {
  const line = [e.name];
  if (only.includes('decode')) {
    const ms = best[`${e.name} decode`];
    line.push(`decode ${ms.toFixed(2)} ms/token (${(1000 / ms).toFixed(1)} tok/s, ×${(best[`${base} decode`] / ms).toFixed(2)} of ${base})`);
  }
  if (only.includes('prefill')) {
    const ms = best[`${e.name} prefill`];
    line.push(`prefill ${(prefillN / ms * 1000).toFixed(0)} tok/s (×${(best[`${base} prefill`] / ms).toFixed(2)})`);
  }
  if (only.includes('passes') && e.pass) line.push(sizes.map((n) => `t(${n})/t(1) ${(best[`${e.name} t(${n})`] / best[`${e.name} t(1)`]).toFixed(2)}`).join(' '));
  console.log(line.join('; '));
}
process.exit(0);
