// steps.mjs for native llama.cpp (node-llama-cpp, one thread, flash attention off, f16 KV cache), for
// instruction counts under callgrind (count.sh with NATIVE=1): STEPS decode steps (logits and a greedy pick)
// from position FROM, or with PASS=k STEPS prefill passes of k tokens at FROM (no logits, as prefill). Under valgrind, ggml's CPU detection sees the
// features valgrind emulates (AVX2, no AVX-512), so it loads the AVX2 ("haswell") kernels. Not a test.
// node wasm/perf/native-steps.mjs FILE STEPS
const [path, steps] = process.argv.slice(2);
const from = Number(process.env.FROM ?? 64);
const pass = Number(process.env.PASS ?? 1);
const { getLlama, LlamaLogLevel } = await import('../../tools/peers/node_modules/node-llama-cpp/dist/index.js');
const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error, build: 'never', usePrebuiltBinaries: true, maxThreads: 1 });
const model = await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: false });
const context = await model.createContext({ contextSize: 1024, batchSize: 512, threads: 1, sequences: 1, flashAttention: false });
const seq = context.getSequence();
const ids = (n, first) => Array.from({ length: n }, (_, i) => 3 + (((first + i) * 7919) % 2000));
await seq.evaluateWithoutGeneratingNewTokens(ids(from, 0));
if (pass === 1) {
  let k = 0;
  if (Number(steps) > 0) for await (const _ of seq.evaluate([5], { temperature: 0, yieldEogToken: true })) if (++k === Number(steps)) break;
} else {
  for (let i = 0; i < Number(steps); i++) {
    // k new tokens after the FROM-token prefix, dropped again.
    await seq.evaluateWithoutGeneratingNewTokens(ids(pass, from + i));
    await seq.eraseContextTokenRanges([{ start: from, end: from + pass }]);
  }
}
process.exit(0);
