// Decode speed of sdk/wasm/recyclegpt.wasm on a random ~25M-parameter llama.
// Not a test. Usage: node wasm/bench-forward.mjs [q8_0|q4_0|f16|f32 ...] (default q8_0 q4_0)
// Env: VOCAB (default 8192), LAYERS (default 8; 1 keeps the weights in cache), STEPS (default
// 100), BATCH (prefill size, default 0 = skip), WASM (module path, default
// sdk/wasm/recyclegpt.wasm: compare builds), SIZES (default 1,2,4), PASSES (default 20): rounds
// of 20 passes of each size (logits for every row, as a recycled-decoding verify pass asks); the
// fastest round's mean is reported, relative to the 1-token pass. V8 compiles the module's
// hot functions in the background while the first type runs: name it twice to time it warm.
import { readFileSync } from 'node:fs';

const TYPES = { f32: { id: 0, rowBytes: (c) => c * 4 }, f16: { id: 1, rowBytes: (c) => c * 2 }, q4_0: { id: 2, rowBytes: (c) => (c / 32) * 18 }, q8_0: { id: 8, rowBytes: (c) => (c / 32) * 34 } };
const vocab = Number(process.env.VOCAB ?? 8192);
const steps = Number(process.env.STEPS ?? 100);
const batch = Number(process.env.BATCH ?? 0);
const passes = Number(process.env.PASSES ?? 20);
const PASS_SIZES = (process.env.SIZES ?? '1,2,4').split(',').map(Number);
const PASSES_PER_ROUND = 20;
const maxBatch = Math.max(batch, ...PASS_SIZES);
const cfg = { vocab, dim: 512, layers: Number(process.env.LAYERS ?? 8), heads: 8, kvHeads: 8, ffn: 1376, ctx: 512, headDim: 64 };

const wasmPath = process.env.WASM ?? new URL('../sdk/wasm/recyclegpt.wasm', import.meta.url);
const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath));
const rg = instance.exports;
const mem = () => new Uint8Array(rg.memory.buffer);

let seed = 12345;
const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const f16Bits = (x) => { const f = new Float32Array([x]); const b = new Uint32Array(f.buffer)[0]; return ((b >>> 16) & 0x8000) | ((((b >>> 23) & 0xff) - 112) << 10) | ((b >>> 13) & 0x3ff); };

/** Random bytes whose values stay around ±0.05 so activations do not blow up. */
function fill(ptr, type, rows, cols) {
  const bytes = mem();
  const view = new DataView(rg.memory.buffer);
  const rowBytes = TYPES[type].rowBytes(cols);
  if (type === 'f32') for (let i = 0; i < rows * cols; i++) view.setFloat32(ptr + 4 * i, (random() - 0.5) * 0.1, true);
  else if (type === 'f16') for (let i = 0; i < rows * cols; i++) view.setUint16(ptr + 2 * i, f16Bits((random() - 0.5) * 0.1), true);
  else {
    const blockBytes = type === 'q8_0' ? 34 : 18;
    const scale = f16Bits(type === 'q8_0' ? 0.05 / 127 : 0.05 / 8);
    for (let b = 0; b < (rows * rowBytes) / blockBytes; b++) {
      const at = ptr + b * blockBytes;
      view.setUint16(at, scale, true);
      for (let j = 2; j < blockBytes; j++) bytes[at + j] = (random() * 256) | 0;
    }
  }
}

function check(ok, what) {
  if (!ok) throw new Error(`${what} failed: error ${rg.rg_last_error()}`);
}

function loadModel(type) {
  const words = [cfg.vocab, cfg.dim, cfg.layers, cfg.heads, cfg.kvHeads, cfg.ffn, cfg.ctx, cfg.headDim, cfg.headDim, 0, 0, 1, maxBatch];
  const cfgPtr = rg.rg_alloc(words.length * 4) >>> 0;
  const u32 = new Uint32Array(rg.memory.buffer, cfgPtr, words.length);
  u32.set(words);
  new Float32Array(rg.memory.buffer, cfgPtr + 36, 2).set([10000, 1e-5]);
  const model = rg.rg_model_new(cfgPtr, words.length);
  check(model, 'rg_model_new');
  const qd = cfg.heads * cfg.headDim;
  const kvd = cfg.kvHeads * cfg.headDim;
  const matrices = [[0, 0, cfg.vocab, cfg.dim], [4, 0, qd, cfg.dim], [5, 0, kvd, cfg.dim], [6, 0, kvd, cfg.dim], [7, 0, cfg.dim, qd], [9, 0, cfg.ffn, cfg.dim], [10, 0, cfg.ffn, cfg.dim], [11, 0, cfg.dim, cfg.ffn]];
  let params = 0;
  for (const [kind, , rows, cols] of matrices) {
    for (let layer = 0; layer < (kind === 0 ? 1 : cfg.layers); layer++) {
      const ptr = rg.rg_tensor_reserve(model, kind, layer, TYPES[type].id, rows, cols) >>> 0;
      check(ptr, `reserve kind ${kind}`);
      fill(ptr, type, rows, cols);
      params += rows * cols;
    }
  }
  for (const [kind, layers] of [[1, 1], [3, cfg.layers], [8, cfg.layers]]) {
    for (let layer = 0; layer < layers; layer++) {
      const ptr = rg.rg_tensor_reserve(model, kind, layer, 0, 1, cfg.dim) >>> 0;
      check(ptr, `reserve norm ${kind}`);
      new Float32Array(rg.memory.buffer, ptr, cfg.dim).fill(1);
    }
  }
  check(rg.rg_model_ready(model) === 0, 'rg_model_ready');
  return { model, params };
}

/** CPU ms of an n-token pass at a fixed position, the fastest round's (the minimum shrugs off other
 * processes on a shared machine), and its ratio to the 1-token pass. */
function passTimes(model) {
  new Uint32Array(rg.memory.buffer, tokensPtr, maxBatch).fill(5);
  const fastest = {};
  for (const n of PASS_SIZES) {
    check(rg.rg_forward(model, tokensPtr, n, 64, 0) === 0, 'rg_forward pass'); // warm up
    fastest[n] = Infinity;
    for (let r = 0; r < passes; r++) {
      const start = process.cpuUsage();
      for (let k = 0; k < PASSES_PER_ROUND; k++) check(rg.rg_forward(model, tokensPtr, n, 64, 0) === 0, 'rg_forward pass');
      const used = process.cpuUsage(start);
      fastest[n] = Math.min(fastest[n], (used.user + used.system) / 1000 / PASSES_PER_ROUND);
    }
  }
  return PASS_SIZES.map((n) => `${n}-token pass ${fastest[n].toFixed(3)} ms cpu (×${(fastest[n] / fastest[1]).toFixed(2)})`).join(', ');
}

const tokensPtr = rg.rg_alloc(4 * maxBatch) >>> 0;
for (const type of process.argv.slice(2).length ? process.argv.slice(2) : ['q8_0', 'q4_0']) {
  const { model, params } = loadModel(type);
  const tokens = () => new Uint32Array(rg.memory.buffer, tokensPtr, maxBatch);
  let token = 1;
  const step = (pos) => {
    tokens()[0] = token;
    check(rg.rg_forward(model, tokensPtr, 1, pos, 0) === 0, 'rg_forward');
    const logits = new Float32Array(rg.memory.buffer, rg.rg_logits(model) >>> 0, cfg.vocab);
    let best = 0;
    for (let i = 1; i < cfg.vocab; i++) if (logits[i] > logits[best]) best = i;
    token = best;
  };
  for (let pos = 0; pos < 5; pos++) step(pos); // warm up the JIT tiers
  // CPU time as well as wall time: other processes on a shared machine skew the wall clock.
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  for (let pos = 0; pos < steps; pos++) step(pos);
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  let line = `${type}: ${(params / 1e6).toFixed(1)}M params, decode ${(steps / seconds).toFixed(1)} tok/s wall, ${(steps / cpuSeconds).toFixed(1)} tok/s cpu (${steps} steps)`;
  if (batch > 1) {
    tokens().fill(7);
    const repeats = 5;
    const prefillStart = process.cpuUsage();
    for (let r = 0; r < repeats; r++) check(rg.rg_forward(model, tokensPtr, batch, 0, batch - 1) === 0, 'rg_forward batch');
    const used = process.cpuUsage(prefillStart);
    line += `, prefill ${((repeats * batch * 1e6) / (used.user + used.system)).toFixed(1)} tok/s cpu (batch ${batch})`;
  }
  console.log(line);
  if (passes > 0) console.log(`${type}: ${passTimes(model)}`);
  rg.rg_model_free(model);
}
