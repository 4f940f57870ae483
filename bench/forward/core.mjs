// Bare forward passes of the engine on random weights written straight into its memory: no GGUF,
// no SDK. Plain JavaScript so that the same code runs in Node (wasm/bench-forward.mjs) and inside
// workerd (bench/workerd/probe-worker.mjs), where the two runtimes are compared like for like.
// Types: core.d.mts. Shapes: shapes.mjs.

/** ggml type ids and row sizes of the types this probe writes. */
export const TYPES = {
  f32: { id: 0, blockBytes: 4, blockValues: 1 },
  f16: { id: 1, blockBytes: 2, blockValues: 1 },
  q4_0: { id: 2, blockBytes: 18, blockValues: 32, scales: [[0, 0.05 / 8]] },
  q5_0: { id: 6, blockBytes: 22, blockValues: 32, scales: [[0, 0.05 / 16]] },
  q8_0: { id: 8, blockBytes: 34, blockValues: 32, scales: [[0, 0.05 / 127]] },
  // K-quants (rows a multiple of 256): Q4_K's d and dmin lead its block, Q6_K's d ends it; the 6-bit / 8-bit
  // sub-block scales stay random, which the kernels' speed does not depend on.
  q4_k: { id: 12, blockBytes: 144, blockValues: 256, scales: [[0, 0.05 / 8 / 63], [2, 0.05 / 63]] },
  q6_k: { id: 14, blockBytes: 210, blockValues: 256, scales: [[208, 1e-4]] }, // the smallest normal f16 is 6.1e-5
};

/** Engine tensor kinds (wasm/src/catalog.rs). */
const KIND = { tokenEmbd: 0, outputNorm: 1, output: 2, attnNorm: 3, q: 4, k: 5, v: 6, o: 7, ffnNorm: 8, gate: 9, up: 10, down: 11 };

const f16Bits = (x) => {
  const b = new Uint32Array(new Float32Array([x]).buffer)[0];
  return ((b >>> 16) & 0x8000) | ((((b >>> 23) & 0xff) - 112) << 10) | ((b >>> 13) & 0x3ff);
};

/** xorshift32: fast, deterministic filler for hundreds of megabytes. */
function randomWords(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

/**
 * Random weights whose values stay near ±0.05, so activations neither vanish nor blow up:
 * quant bytes uniform, every block scale the same.
 */
function fill(memory, ptr, type, rows, cols, next) {
  const { blockBytes, blockValues } = TYPES[type];
  const bytes = (rows * cols * blockBytes) / blockValues;
  const aligned = (ptr + 3) & ~3;
  const words = new Uint32Array(memory.buffer, aligned, (bytes - (aligned - ptr)) >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = next();
  const view = new DataView(memory.buffer);
  for (let i = ptr; i < aligned; i++) view.setUint8(i, next() & 0xff);
  for (let i = aligned + words.length * 4; i < ptr + bytes; i++) view.setUint8(i, next() & 0xff);
  if (type === 'f32') for (let i = 0; i < rows * cols; i++) view.setFloat32(ptr + 4 * i, ((next() / 2 ** 32) - 0.5) * 0.1, true);
  else if (type === 'f16') for (let i = 0; i < rows * cols; i++) view.setUint16(ptr + 2 * i, f16Bits(((next() / 2 ** 32) - 0.5) * 0.1), true);
  else {
    for (const [offset, value] of TYPES[type].scales) {
      const scale = f16Bits(value);
      for (let at = ptr; at < ptr + bytes; at += blockBytes) view.setUint16(at + offset, scale, true);
    }
  }
  return bytes;
}

function check(rg, ok, what) {
  if (!ok) throw new Error(`${what} failed: engine error ${rg.rg_last_error()}`);
}

/**
 * A random model of `shape` (see shapes.mjs) with `type` matrices, tied output unless shape.tied is false.
 * Returns its handle, parameter count and weight bytes. `ctx`: KV cache length; `maxBatch`: most tokens a pass.
 */
export function buildRandomModel(rg, shape, type, { ctx = 1024, maxBatch = 32, seed = 12345 } = {}) {
  const headDim = shape.headDim ?? shape.dim / shape.heads;
  // docs/ARCHITECTURE.md "Config words": a llama stack, f16 KV cache, one sequence, no RoPE scaling, no sliding
  // window, scores scaled by 1/√head_dim, no soft-cap. Words 9, 10 (rope base, rms eps) are f32, set below.
  const ONE = 0x3f800000; // 1.0f: RoPE attn_factor (word 18, the YaRN context, must be a count even unused)
  const words = [shape.vocab, shape.dim, shape.layers, shape.heads, shape.kvHeads, shape.ffn, ctx, headDim, headDim, 0, 0, 1, maxBatch, 0, 1, 0, 0, ONE, ctx, 0, 0, 0, 0, 0];
  const cfgPtr = rg.rg_alloc(words.length * 4) >>> 0;
  new Uint32Array(rg.memory.buffer, cfgPtr, words.length).set(words);
  new Float32Array(rg.memory.buffer, cfgPtr + 36, 2).set([shape.ropeFreqBase ?? 10000, shape.rmsEps ?? 1e-5]);
  const model = rg.rg_model_new(cfgPtr, words.length);
  rg.rg_free(cfgPtr, words.length * 4);
  check(rg, model, 'rg_model_new');
  const qDim = shape.heads * headDim;
  const kvDim = shape.kvHeads * headDim;
  const next = randomWords(seed);
  const matrices = [
    [KIND.tokenEmbd, 1, shape.vocab, shape.dim],
    ...(shape.tied === false ? [[KIND.output, 1, shape.vocab, shape.dim]] : []),
    [KIND.q, shape.layers, qDim, shape.dim],
    [KIND.k, shape.layers, kvDim, shape.dim],
    [KIND.v, shape.layers, kvDim, shape.dim],
    [KIND.o, shape.layers, shape.dim, qDim],
    [KIND.gate, shape.layers, shape.ffn, shape.dim],
    [KIND.up, shape.layers, shape.ffn, shape.dim],
    [KIND.down, shape.layers, shape.dim, shape.ffn],
  ];
  let params = 0;
  let weightBytes = 0;
  for (const [kind, layers, rows, cols] of matrices) {
    for (let layer = 0; layer < layers; layer++) {
      const ptr = rg.rg_tensor_reserve(model, kind, layer, TYPES[type].id, rows, cols) >>> 0;
      check(rg, ptr, `reserve kind ${kind}`);
      weightBytes += fill(rg.memory, ptr, type, rows, cols, next);
      params += rows * cols;
    }
  }
  for (const [kind, layers] of [[KIND.outputNorm, 1], [KIND.attnNorm, shape.layers], [KIND.ffnNorm, shape.layers]]) {
    for (let layer = 0; layer < layers; layer++) {
      const ptr = rg.rg_tensor_reserve(model, kind, layer, TYPES.f32.id, 1, shape.dim) >>> 0;
      check(rg, ptr, `reserve norm ${kind}`);
      new Float32Array(rg.memory.buffer, ptr, shape.dim).fill(1);
    }
  }
  check(rg, rg.rg_model_ready(model) === 0, 'rg_model_ready');
  const tokens = rg.rg_alloc(4 * maxBatch) >>> 0;
  return { model, tokens, params, weightBytes, vocab: shape.vocab, maxBatch };
}

/** Writes `ids` as the next pass's tokens. */
function setTokens(rg, probe, ids) {
  new Uint32Array(rg.memory.buffer, probe.tokens, ids.length).set(ids);
}

function argmax(rg, probe) {
  const logits = new Float32Array(rg.memory.buffer, rg.rg_logits(probe.model) >>> 0, probe.vocab);
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** `steps` greedy decode steps (1-token pass with logits, then argmax) at positions from, from + 1, … */
export function decodeSteps(rg, probe, steps, from = 0) {
  let token = 1;
  for (let i = 0; i < steps; i++) {
    setTokens(rg, probe, [token]);
    check(rg, rg.rg_forward(probe.model, probe.tokens, 1, from + i, 0) === 0, 'rg_forward');
    token = argmax(rg, probe);
  }
}

/** A prompt of `n` tokens from position 0 in passes of maxBatch, logits for the last row only, as prefill runs. */
export function prefillPrompt(rg, probe, n) {
  const ids = Array.from({ length: n }, (_, i) => (i * 7919 + 3) % probe.vocab);
  for (let at = 0; at < n; at += probe.maxBatch) {
    const chunk = ids.slice(at, Math.min(n, at + probe.maxBatch));
    setTokens(rg, probe, chunk);
    const last = at + chunk.length === n;
    check(rg, rg.rg_forward(probe.model, probe.tokens, chunk.length, at, last ? chunk.length - 1 : chunk.length) === 0, 'rg_forward prefill');
  }
}

/** `count` passes of n tokens at position `pos`, logits for every row (what a verifying pass of recycled decoding needs). */
export function passes(rg, probe, n, count, pos = 64) {
  setTokens(rg, probe, Array.from({ length: n }, (_, i) => 5 + i));
  for (let k = 0; k < count; k++) check(rg, rg.rg_forward(probe.model, probe.tokens, n, pos, 0) === 0, 'rg_forward pass');
}

/** Fastest of `rounds` timings of `run` after one warm-up run (which also lets V8 tier the code up). */
function fastest(run, rounds, clock) {
  const times = [];
  for (let r = -1; r < rounds; r++) {
    const t0 = clock();
    run();
    if (r >= 0) times.push(clock() - t0);
  }
  return { best: Math.min(...times), times };
}

/** ms per greedy decode step, the fastest of `rounds` rounds of `steps` (the minimum shrugs off other processes). */
export function timeDecode(rg, probe, { steps = 32, rounds = 3, from = 0, clock }) {
  const { best, times } = fastest(() => decodeSteps(rg, probe, steps, from), rounds, clock);
  return { msPerStep: best / steps, rounds: times.map((t) => t / steps) };
}

/** ms of a whole n-token prompt, the fastest of `rounds`. */
export function timePrefill(rg, probe, { n = 512, rounds = 2, clock }) {
  const { best, times } = fastest(() => prefillPrompt(rg, probe, n), rounds, clock);
  return { ms: best, rounds: times };
}

/**
 * ms of one n-token pass for each n in `sizes`, interleaved round by round so that load hits every
 * size alike; each size's fastest round.
 */
export function timePasses(rg, probe, { sizes = [1, 2, 3, 4], pos = 64, rounds = 10, perRound = 10, clock }) {
  const best = Object.fromEntries(sizes.map((n) => [n, Infinity]));
  for (let r = -1; r < rounds; r++) {
    for (const n of sizes) {
      const t0 = clock();
      passes(rg, probe, n, perRound, pos);
      if (r >= 0) best[n] = Math.min(best[n], (clock() - t0) / perRound);
    }
  }
  return best;
}

export function freeModel(rg, probe) {
  rg.rg_free(probe.tokens, 4 * probe.maxBatch);
  rg.rg_model_free(probe.model);
}

/**
 * A module whose one function is `i32x4.relaxed_dot_i8x16_i7x16_add_s` (relaxed SIMD's 8-bit dot product):
 * WebAssembly.validate says whether the runtime would run a relaxed-SIMD build of the engine.
 */
const RELAXED_DOT = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, // type: (v128 v128 v128) -> v128
  0x03, 0x02, 0x01, 0x00, // one function of that type
  0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x93, 0x02, 0x0b, // local.get 0 1 2, 0xfd 0x113, end
]);

/** What the runtime's WebAssembly supports, of what the engine's builds use or could. */
export function wasmFeatures() {
  return { relaxedSimd: WebAssembly.validate(RELAXED_DOT) };
}
