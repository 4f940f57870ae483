// rg_kernel_dot in workerd: the relaxed-SIMD kernels of sdk/wasm/recyclegpt-relaxed.wasm against
// their scalar twins, bit for bit. Node 20 runs relaxed SIMD wrongly, so the module runs where it
// is deployed: a Worker in workerd (Miniflare), fed the rows of test/fixtures/kernel-rows.ts.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOCK_LENGTHS, BLOCKS, extremeActivation, filledBlockRow, randomActivation, randomBlockRow, TYPES, type TypeName } from './fixtures/kernel-rows.js';

const WASM = fileURLToPath(new URL('../sdk/wasm/recyclegpt-relaxed.wasm', import.meta.url));
const SIMD128_WASM = fileURLToPath(new URL('../sdk/wasm/recyclegpt.wasm', import.meta.url));
/** The bench's bare-engine random model builder (self-contained): the same model in both modules. */
const CORE = fileURLToPath(new URL('../bench/forward/core.mjs', import.meta.url));

/**
 * POST: cases, each an i32 header [type, n, weight bytes] then the weight bytes (padded to 4) and
 * n f32 values. Answer: f32 [kernel set, then per case scalar, relaxed, last error].
 */
const WORKER = `import engine from './engine.wasm';
export default {
  async fetch(request) {
    const rg = (await WebAssembly.instantiate(engine, {})).exports;
    const body = await request.arrayBuffer();
    const out = [rg.rg_kernel_set()];
    for (let at = 0; at < body.byteLength; ) {
      const [type, n, bytes] = new Int32Array(body, at, 3);
      const w = new Uint8Array(body, at + 12, bytes);
      const x = new Float32Array(body, at + 12 + Math.ceil(bytes / 4) * 4, n);
      at += 12 + Math.ceil(bytes / 4) * 4 + 4 * n;
      const wPtr = rg.rg_alloc(bytes) >>> 0, xPtr = rg.rg_alloc(4 * n) >>> 0;
      new Uint8Array(rg.memory.buffer, wPtr, bytes).set(w);
      new Float32Array(rg.memory.buffer, xPtr, n).set(x);
      out.push(rg.rg_kernel_dot(type, 0, wPtr, xPtr, n), rg.rg_kernel_dot(type, 1, wPtr, xPtr, n), rg.rg_last_error());
      rg.rg_free(wPtr, bytes);
      rg.rg_free(xPtr, 4 * n);
    }
    return new Response(new Float32Array(out));
  },
};`;

/**
 * GET /forward?type=…: one random model (a small llama of 256-wide rows) built in each module,
 * then passes of 1, 2, 3 and 7 tokens with logits for every row. Answer: the relaxed module's
 * logits, then the SIMD128 module's.
 */
const FORWARD_WORKER = `import relaxed from './engine.wasm';
import simd128 from './simd128.wasm';
import { buildRandomModel, freeModel } from './core.mjs';
const SHAPE = { dim: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 64, ffn: 512, vocab: 512, tied: true };
export default {
  async fetch(request) {
    const type = new URL(request.url).searchParams.get('type');
    const out = [];
    for (const engine of [relaxed, simd128]) {
      const rg = (await WebAssembly.instantiate(engine, {})).exports;
      const probe = buildRandomModel(rg, SHAPE, type, { ctx: 64, maxBatch: 8 });
      let pos = 0;
      for (const n of [1, 2, 3, 7]) {
        new Uint32Array(rg.memory.buffer, probe.tokens, n).set(Array.from({ length: n }, (_, i) => (pos * 37 + i * 101) % SHAPE.vocab));
        if (rg.rg_forward(probe.model, probe.tokens, n, pos, 0) !== 0) throw new Error('rg_forward: ' + rg.rg_last_error());
        out.push(...new Float32Array(rg.memory.buffer, rg.rg_logits(probe.model) >>> 0, n * SHAPE.vocab));
        pos += n;
      }
      freeModel(rg, probe);
    }
    return new Response(new Float32Array(out));
  },
};`;

let mf: Miniflare;
let forward: Miniflare;

beforeAll(async () => {
  if (!existsSync(WASM)) throw new Error(`${WASM} is missing: build it with \`node wasm/build.mjs\``);
  mf = new Miniflare({
    modules: [
      { type: 'ESModule', path: 'worker.js', contents: WORKER },
      { type: 'CompiledWasm', path: 'engine.wasm', contents: readFileSync(WASM) },
    ],
    compatibilityDate: '2025-09-01',
  });
  forward = new Miniflare({
    modules: [
      { type: 'ESModule', path: 'worker.js', contents: FORWARD_WORKER },
      { type: 'ESModule', path: 'core.mjs', contents: readFileSync(CORE, 'utf8') },
      { type: 'CompiledWasm', path: 'engine.wasm', contents: readFileSync(WASM) },
      { type: 'CompiledWasm', path: 'simd128.wasm', contents: readFileSync(SIMD128_WASM) },
    ],
    compatibilityDate: '2025-09-01',
  });
});

afterAll(async () => {
  await mf?.dispose();
  await forward?.dispose();
});

interface Case {
  type: TypeName;
  w: Uint8Array;
  x: Float32Array;
}

/** Runs every case in workerd; returns the module's kernel set and each case's two results. */
async function dotsInWorkerd(cases: Case[]): Promise<{ kernelSet: number; results: { scalar: number; relaxed: number }[] }> {
  const size = cases.reduce((s, c) => s + 12 + Math.ceil(c.w.length / 4) * 4 + 4 * c.x.length, 0);
  const body = new Uint8Array(size);
  let at = 0;
  for (const { type, w, x } of cases) {
    new DataView(body.buffer).setInt32(at, TYPES[type], true);
    new DataView(body.buffer).setInt32(at + 4, x.length, true);
    new DataView(body.buffer).setInt32(at + 8, w.length, true);
    body.set(w, at + 12);
    at += 12 + Math.ceil(w.length / 4) * 4;
    body.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength), at);
    at += x.byteLength;
  }
  const response = await mf.dispatchFetch('http://kernels/', { method: 'POST', body });
  expect(response.status).toBe(200);
  const out = new Float32Array(await response.arrayBuffer());
  const results = cases.map((_, i) => {
    expect(out[3 * i + 3], `case ${i}: rg_last_error`).toBe(0);
    return { scalar: out[3 * i + 1]!, relaxed: out[3 * i + 2]! };
  });
  return { kernelSet: out[0]!, results };
}

/** Asserts each case's relaxed result is finite and has the scalar one's bits. */
async function expectBitIdentical(cases: Case[], label: (i: number) => string): Promise<void> {
  const { results } = await dotsInWorkerd(cases);
  const wrong = results
    .map(({ scalar, relaxed }, i) => ({ scalar, relaxed, i }))
    .filter(({ scalar, relaxed }) => !Number.isFinite(scalar) || !Object.is(relaxed, scalar))
    .map(({ scalar, relaxed, i }) => `${label(i)}: relaxed ${relaxed}, scalar ${scalar}`);
  expect(wrong.slice(0, 8)).toEqual([]);
}

const QUANTIZED = Object.keys(BLOCKS) as TypeName[];

describe('rg_kernel_dot relaxed SIMD vs scalar, in workerd', () => {
  it('is the relaxed-SIMD module (rg_kernel_set() = 2)', async () => {
    expect((await dotsInWorkerd([])).kernelSet).toBe(2);
  });

  // The hook returns NaN unless the activation conversions, the packed and raw rows and 1..=3
  // tokens all agree bit for bit; here the relaxed kernels also equal the scalar ones.
  for (const type of QUANTIZED) {
    it(`${type}: bit-identical, every path, random rows`, async () => {
      const cases: Case[] = [];
      for (const n of BLOCK_LENGTHS[BLOCKS[type]!.size]!) {
        for (let trial = 0; trial < 4; trial++) cases.push({ type, w: randomBlockRow(type, n), x: randomActivation(n, trial) });
      }
      await expectBitIdentical(cases, (i) => `${type} n ${cases[i]!.x.length} trial ${i % 4}`);
    });

    it(`${type}: bit-identical at the extremes (quants 0 / max / sign boundaries, activations ±127)`, async () => {
      const n = 2 * BLOCKS[type]!.size;
      const cases: Case[] = [];
      for (const fill of [0x00, 0xff, 0x80, 0x7f]) {
        for (let kind = 0; kind < 4; kind++) cases.push({ type, w: filledBlockRow(type, n, fill), x: extremeActivation(n, kind) });
      }
      await expectBitIdentical(cases, (i) => `${type} fill ${[0x00, 0xff, 0x80, 0x7f][i >> 2]} kind ${i % 4}`);
    });
  }
});

describe('a whole forward pass in workerd: the relaxed module gives the SIMD128 module\'s logits', () => {
  // Packing (the relaxed kernel order), the per-token activation copies, the matrix-matrix tiles and
  // every kernel of the type together: the two modules differ only in kernels that give the same bits.
  for (const type of ['q4_0', 'q5_0', 'q8_0', 'q4_k', 'q6_k']) {
    it(`${type}: bit-identical logits for passes of 1, 2, 3 and 7 tokens`, async () => {
      const response = await forward.dispatchFetch(`http://forward/?type=${type}`);
      expect(response.status, await response.clone().text()).toBe(200);
      const logits = new Uint32Array(await response.arrayBuffer());
      const half = logits.length / 2;
      expect(half).toBe(13 * 512);
      const [relaxed, simd128] = [logits.subarray(0, half), logits.subarray(half)];
      const differing = relaxed.reduce((count, bits, i) => count + (bits !== simd128[i] ? 1 : 0), 0);
      expect(differing).toBe(0);
      expect(new Set(relaxed).size, 'the logits vary').toBeGreaterThan(100);
    });
  }
});
