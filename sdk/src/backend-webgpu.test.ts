/**
 * The WebGPU backend through the SDK, in headless chromium with SwiftShader's WebGPU (kernels/src/testing/sdk-page.ts),
 * against the WASM backend in the same page; and backend selection in Node. Browser cases are skipped, with the
 * reason, when chromium or a WebGPU adapter is missing.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBrowserPage, type BrowserPage } from '../../kernels/src/testing/browser.js';
import { makeTestModel, STANDARD_SPECS, type ModelSpec } from '../../test/fixtures/models.js';
import { COPY_HEAD, makeTestHead } from '../../test/fixtures/recycle-head.js';
import { RecycleGPTError } from './errors.js';
import { loadModel } from './model.js';

/**
 * WebGPU logits may differ from WASM's by this much relative to the largest |logit|: WASM rounds activations to f16
 * before F16 dots and to Q8_0 before Q8_0/Q4_0 dots (as llama.cpp does), WebGPU keeps them f32.
 */
const TOLERANCE: Record<string, number> = { F32: 1e-3, F16: 1e-3, Q8_0: 2e-2 };
const PROMPT = [1, 15, 27, 300, 42, 7, 99, 250, 13, 64];
const MODELS: Record<string, ModelSpec> = { f32: STANDARD_SPECS.f32_llama!, f16_gqa: STANDARD_SPECS.f16_gpt2_gqa!, q8_tied: STANDARD_SPECS.q8_llama_tied! };

interface Harness {
  unavailable(): Promise<string | null>;
  compare(model: string, prompt: number[], tokens: number): Promise<{
    backends: string[]; positions: number; maxError: number; scale: number; differingMargins: number[]; wasmTokens: number[]; gpuTokens: number[];
  }>;
  recycle(model: string, head: string, prompt: number[], tokens: number): Promise<{
    backend: string; modes: Record<string, { tokens: number[]; fullPasses: number; accepted: number }>; headError: number; headScale: number; batchError: number;
    fused: Record<'exact' | 'fast' | 'sampled', { separate: number[]; fused: number[] }>;
  }>;
  readbacks(model: string, head: string, prompt: number[], tokens: number): Promise<{
    vocabSize: number; perToken: Record<'greedy' | 'exact' | 'sampled' | 'sampledExact', { count: number; bytes: number }>;
    sampledTokens: { fromTop: number[]; fromLogits: number[] }; distributionsMatch: boolean;
  }>;
  auto(model: string): Promise<{ backend: string; backendReason: string; sequences: number }>;
}

let browser: BrowserPage | undefined;
let skipReason: string | undefined;

/** Calls harness[method](...args) in the page. */
function call<K extends keyof Harness>(method: K, ...args: Parameters<Harness[K]>): ReturnType<Harness[K]> {
  return browser!.page!.evaluate(
    ([m, a]) => (globalThis as unknown as { harness: Record<string, (...x: unknown[]) => unknown> }).harness[m]!(...a),
    [method, args] as const,
  ) as ReturnType<Harness[K]>;
}

beforeAll(async () => {
  const files: Record<string, Uint8Array> = { 'recyclegpt.wasm': readFileSync(new URL('../wasm/recyclegpt.wasm', import.meta.url)) };
  for (const [name, spec] of Object.entries(MODELS)) files[`${name}.gguf`] = readFileSync(await makeTestModel(spec));
  // buildHeadGGUF hashes the base file on disk: the head is made from the same cached fixture the page loads.
  files['q8_tied-head.gguf'] = readFileSync(makeTestHead(await makeTestModel(MODELS.q8_tied!), COPY_HEAD));
  browser = await openBrowserPage(fileURLToPath(new URL('../../kernels/src/testing/sdk-page.ts', import.meta.url)), files);
  skipReason = browser.skipReason;
  if (!skipReason) {
    const unavailable = await call('unavailable');
    if (unavailable) skipReason = `no WebGPU in chromium: ${unavailable}`;
  }
});

afterAll(async () => {
  await browser?.close();
});

describe('WebGPU backend in chromium', () => {
  for (const [name, spec] of Object.entries(MODELS)) {
    it(`${name}: logits within ${TOLERANCE[spec.type]} × max|logit| of WASM; same greedy tokens except at near ties`, async (ctx) => {
      if (skipReason) ctx.skip(skipReason);
      browser!.errors.length = 0;
      const r = await call('compare', `${name}.gguf`, PROMPT, 24);
      const limit = TOLERANCE[spec.type]! * r.scale;
      // Where the WASM top-2 margin is below twice the logit tolerance, either token is a correct pick.
      const nearTies = r.differingMargins.filter((m) => m < 2 * limit).length;
      console.log(`${name}: ${r.positions} positions, max |webgpu - wasm| = ${r.maxError.toExponential(2)} (max |logit| ${r.scale.toFixed(2)}), ${nearTies} near ties`);
      expect(browser!.errors, 'errors in the page').toEqual([]);
      expect(r.backends).toEqual(['wasm', 'webgpu']);
      expect(r.maxError).toBeLessThanOrEqual(limit);
      expect(r.differingMargins.length, 'argmax differs where the WASM margin is clear').toBe(nearTies);
      if (nearTies === 0) expect(r.gpuTokens).toEqual(r.wasmTokens);
    });
  }

  it('q8_tied with a copy head: exact and chain equal off token for token; head logits near the WASM head', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    browser!.errors.length = 0;
    const r = await call('recycle', 'q8_tied.gguf', 'q8_tied-head.gguf', PROMPT, 32);
    const { off, exact, chain } = r.modes;
    console.log(`recycle: head |webgpu - wasm| = ${r.headError.toExponential(2)} (max |logit| ${r.headScale.toFixed(2)}); full passes off/exact/chain ${off!.fullPasses}/${exact!.fullPasses}/${chain!.fullPasses}, accepted ${exact!.accepted}/${chain!.accepted}`);
    expect(browser!.errors, 'errors in the page').toEqual([]);
    expect(r.backend).toBe('webgpu');
    expect(off!.tokens.length).toBe(32);
    expect(exact!.tokens).toEqual(off!.tokens);
    expect(chain!.tokens).toEqual(off!.tokens);
    // The copy head guesses the base's own next token, so drafts get accepted and passes saved.
    expect(exact!.accepted).toBeGreaterThan(0);
    expect(chain!.fullPasses).toBeLessThan(off!.fullPasses);
    expect(r.batchError, 'batched head rows equal single-row passes').toBe(0);
    // Drafting and its check in one submission give the drafts and picks of the separate passes.
    expect(r.fused.exact.fused).toEqual(r.fused.exact.separate);
    expect(r.fused.fast.fused).toEqual(r.fused.fast.separate);
    expect(r.fused.sampled.fused).toEqual(r.fused.sampled.separate);
    expect(r.fused.sampled.separate).toHaveLength(2 + 3 * 2 * 5);
    expect(r.fused.exact.separate).toHaveLength(5);
    expect(r.headError).toBeLessThanOrEqual(TOLERANCE.Q8_0! * r.headScale);
  });

  it('greedy decoding reads back only the picked tokens; sampling only the top-k candidates', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const { perToken, sampledTokens, distributionsMatch } = await call('readbacks', 'q8_tied.gguf', 'q8_tied-head.gguf', PROMPT, 16);
    console.log(`readbacks per token: ${JSON.stringify(perToken)}`);
    // One round trip per full pass, 4 bytes per row; exact drafts and checks in the same round trip (draftAndCheck),
    // reading back the draft and two rows' picks. (A token's own pass may fall outside the count at either end, so
    // "per token" is at most one pass.)
    expect(perToken.greedy.count).toBeLessThanOrEqual(1);
    expect(perToken.greedy.bytes / perToken.greedy.count).toBe(4);
    expect(perToken.exact.count).toBeLessThan(1);
    expect(perToken.exact.bytes / perToken.exact.count).toBeCloseTo(12, 9);
    // topK 40 (the default): 40 ids and 40 logits a row, where the whole row would be 4 × vocabulary bytes.
    expect(perToken.sampled.count).toBeLessThanOrEqual(1);
    expect(perToken.sampled.bytes / perToken.sampled.count).toBe(2 * 40 * 4);
    expect(perToken.sampledExact.count, 'sampled exact drafts and checks in one round trip').toBeLessThan(1);
    expect(distributionsMatch, 'the candidates give the whole row\'s distribution').toBe(true);
    expect(sampledTokens.fromTop.length).toBe(24);
    expect(sampledTokens.fromTop).toEqual(sampledTokens.fromLogits);
  });

  it("'auto' picks WebGPU in chromium, which keeps one KV sequence", async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    expect(await call('auto', 'f32.gguf')).toEqual({ backend: 'webgpu', backendReason: 'WebGPU adapter found', sequences: 1 });
  });
});

describe('backend selection in Node (no navigator.gpu)', () => {
  it("'auto' picks WASM and says why", async () => {
    const model = await loadModel(await makeTestModel(MODELS.f32!), { backend: 'auto' });
    expect([model.info.backend, model.info.backendReason]).toEqual(['wasm', 'no navigator.gpu']);
    model.dispose();
  });

  it("'webgpu' without an adapter is a typed error", async () => {
    const error = await loadModel(await makeTestModel(MODELS.f32!), { backend: 'webgpu' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RecycleGPTError);
    expect((error as RecycleGPTError).code).toBe('ENGINE');
    expect((error as RecycleGPTError).message).toMatch(/needs WebGPU.*no navigator\.gpu/);
  });

  it('an unknown backend is an INVALID_ARGUMENT error', async () => {
    const error = await loadModel(await makeTestModel(MODELS.f32!), { backend: 'cuda' as 'wasm' }).catch((e: unknown) => e);
    expect((error as RecycleGPTError).code).toBe('INVALID_ARGUMENT');
  });

  it("'auto' falls back to WASM when the adapter gives no device; 'webgpu' says why", async () => {
    const adapter = { limits: { maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 30 }, requestDevice: () => Promise.reject(new Error('device lost at birth')) };
    const original = Object.getOwnPropertyDescriptor(globalThis, 'navigator'); // Node 21+ has one
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: { requestAdapter: async () => adapter } }, configurable: true });
    try {
      const model = await loadModel(await makeTestModel(MODELS.f32!), { backend: 'auto' });
      expect(model.info.backend).toBe('wasm');
      expect(model.info.backendReason).toMatch(/WebGPU failed to start: .*device lost at birth/);
      model.dispose();
      const error = await loadModel(await makeTestModel(MODELS.f32!), { backend: 'webgpu' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RecycleGPTError);
      expect((error as RecycleGPTError).message).toMatch(/gave no device \(device lost at birth\)/);
    } finally {
      if (original) Object.defineProperty(globalThis, 'navigator', original);
      else Reflect.deleteProperty(globalThis, 'navigator');
    }
  });

  it("defaults to 'wasm'", async () => {
    const model = await loadModel(await makeTestModel(MODELS.f32!));
    expect([model.info.backend, model.info.backendReason]).toEqual(['wasm', 'asked for']);
    model.dispose();
  });
});
