#!/usr/bin/env node
/**
 * The SDK's WebGPU backend in Node (Dawn, the `webgpu` package), from the built SDK: greedy decode tokens/s of
 * each decode mode with the model's recycle head, their ratios to `off`, and what a 1- and 2-token forward and a
 * head guess cost (bench/gpu/README.md).
 *
 *   node bench/gpu/webgpu_decode.mjs BASE.gguf:HEAD.gguf [...] [--tokens 128] [--seconds 60] [--out FILE]
 *
 * Writes one JSON object to FILE (rewritten after each model, so a run cut short keeps what it measured) or stdout.
 * A model too slow for `--seconds` of decoding over all modes gets fewer tokens than `--tokens` (at least 16).
 * Needs `npm run build`; on a machine without a GPU, a Vulkan driver such as SwiftShader.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { provideNodeWebGPU } from '../../sdk/dist/node.js';
import { decode } from '../../sdk/dist/generate.js';
import { openContext } from '../../sdk/dist/model.js';

// Token ids (no BOS), the same in bench/gpu/torch_decode.py.
const PROMPT = [1, 300, 301, 302, 303, 304, 305, 306];
// Adaptive `exact` before the always-drafting runs: its judgement uses the drafting record of the model's context.
const MODES = [
  { name: 'off', decode: { mode: 'off' } },
  { name: 'fast', decode: { mode: 'fast' } },
  { name: 'exact', decode: { mode: 'exact' } },
  { name: 'exact, always drafting', decode: { mode: 'exact', adaptive: false } },
  { name: 'chain k=2, always drafting', decode: { mode: 'chain', draftLength: 2, adaptive: false } },
];

const { values, positionals } = parseArgs({
  options: { tokens: { type: 'string', default: '128' }, seconds: { type: 'string', default: '60' }, out: { type: 'string' } },
  allowPositionals: true,
});
const RUNS = 4; // a warm-up and the best of three

const gpu = await provideNodeWebGPU();
if (typeof gpu === 'string') throw new Error(gpu);
const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
const adapterInfo = adapter?.info ? { vendor: adapter.info.vendor, architecture: adapter.info.architecture, device: adapter.info.device, description: adapter.info.description } : null;

const report = { engine: 'recyclegpt-webgpu', adapter: adapterInfo, node: process.version, prompt: PROMPT, results: [] };
const save = () => (values.out ? writeFileSync(values.out, JSON.stringify(report)) : undefined);
for (const pair of positionals) {
  const [base, head] = pair.split(':');
  const options = { backend: 'webgpu', recycle: head, contextLength: 256 };
  const t0 = performance.now();
  // One load serves the decode runs and the step costs (a 1.1B model takes seconds to load).
  const { context, info } = await openContext(base, options);
  const loadMs = performance.now() - t0;
  // A first short plain run compiles the pipelines and says how many tokens fit the time budget.
  const probe = await complete(context, { maxTokens: 17, temperature: 0 });
  // Drafting modes that never stop run at ~0.4× `off` where drafts fail, hence the margin of 2.
  const affordable = Math.floor((probe.stats.decodeTokensPerSecond * Number(values.seconds)) / (MODES.length * RUNS * 2));
  const tokens = Math.min(Number(values.tokens), Math.max(16, affordable));
  console.error(`# ${base}: loaded in ${(loadMs / 1000).toFixed(1)} s, ${probe.stats.decodeTokensPerSecond.toFixed(1)} tok/s at first, ${tokens} tokens per run`);
  const modes = [];
  let offTokens;
  for (const { name, decode: mode } of MODES) {
    const run = () => complete(context, { maxTokens: tokens + 1, temperature: 0, decode: mode });
    await run(); // warm-up (pipelines, and the adaptive modes' cost measurement)
    let best;
    for (let r = 1; r < RUNS; r++) {
      const out = await run();
      if (!best || out.stats.decodeTokensPerSecond > best.stats.decodeTokensPerSecond) best = out;
    }
    offTokens ??= best.tokens;
    const s = best.stats;
    modes.push({
      mode: name, decodeTokensPerSecond: s.decodeTokensPerSecond, tokensPerPass: s.tokensPerPass ?? null,
      acceptanceRate: s.acceptanceRate ?? null, draftingStopped: s.draftingStopped ?? false,
      identicalToOff: JSON.stringify(best.tokens) === JSON.stringify(offTokens),
    });
    console.error(`# ${base} ${name}: ${s.decodeTokensPerSecond.toFixed(1)} tok/s`);
  }
  const off = modes[0].decodeTokensPerSecond;
  const result = {
    model: base, head, loadMs, backend: info.backend, decodeTokens: tokens, tokens: offTokens.slice(0, 16),
    modes: modes.map((m) => ({ ...m, overOff: m.decodeTokensPerSecond / off })),
  };
  report.results.push(result);
  save(); // the decode modes, before the step costs (~100 timed passes)
  result.step = await stepCosts(context);
  context.llama.free();
  save();
}
gpu.release();
if (!values.out) console.log(JSON.stringify(report));

/** Greedy generation on the context, as Model.complete runs it: the tokens and the stats. */
async function complete(context, options) {
  const tokens = [];
  let stats;
  for await (const token of decode(context, PROMPT, options, (s) => (stats = s))) tokens.push(token.id);
  return { tokens, stats };
}

/** Medians (ms) of a 1-token and a 2-token forward reading back the argmax, and of a head guess, at position 64. */
async function stepCosts(context) {
  const { llama } = context;
  const median = async (run) => {
    const times = [];
    for (let i = 0; i < 35; i++) {
      const t = performance.now();
      await run();
      if (i >= 5) times.push(performance.now() - t);
    }
    return times.sort((a, b) => a - b)[times.length >> 1];
  };
  await context.prefill(PROMPT);
  const one = await median(() => llama.forward([5], 64, 0, 'argmax'));
  const two = await median(() => llama.forward([5, 6], 64, 0, 'argmax'));
  const head = await median(() => llama.recycleForward('base', 0, [5], 65, 0, 'argmax'));
  return { forwardMs: { 1: one, 2: two }, headGuessMs: head, batchRatio2: two / one, headOverPass: head / one };
}
