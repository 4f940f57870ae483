// Model shapes the bench builds random-weight models of: one source for the GGUF builder
// (bench/models.ts), the bare-forward probe (core.mjs) and wasm/bench-forward.mjs. Types: shapes.d.mts.

export const SHAPES = {
  // SmolLM2-135M (HF config.json): llama, tied embeddings, rope_theta 100000.
  'smollm2-135m': {
    label: 'SmolLM2-135M shape',
    dim: 576, layers: 30, heads: 9, kvHeads: 3, headDim: 64, ffn: 1536, vocab: 49152, tied: true,
    ropeFreqBase: 100000, rmsEps: 1e-5, trainedContext: 8192,
  },
  // Qwen3-0.6B: head_dim 128 (so q is 2048 wide on a 1024 residual), rope_theta 1e6, tied. Built as a
  // llama-architecture file until the engine runs qwen3: same tensor sizes, no per-head q/k RMSNorm
  // (2 × 128 weights a layer, a negligible share of a pass).
  'qwen3-0.6b': {
    label: 'Qwen3-0.6B shape (as llama)',
    dim: 1024, layers: 28, heads: 16, kvHeads: 8, headDim: 128, ffn: 3072, vocab: 151936, tied: true,
    ropeFreqBase: 1000000, rmsEps: 1e-6, trainedContext: 40960,
  },
  // The earlier bench model: ~28M parameters, small enough to stay in the CPU's caches.
  'llama30m': {
    label: '~28M llama (cache-resident)',
    dim: 512, layers: 8, heads: 8, kvHeads: 8, headDim: 64, ffn: 1376, vocab: 2840, tied: false,
    ropeFreqBase: 10000, rmsEps: 1e-5, trainedContext: 512,
  },
  // Kernel probes: one thin layer and a wide tied output matrix, so a pass is mostly one matrix ×
  // vector product over weights that stream from memory (32768 × 1024) or stay in cache (4096 × 256).
  'matvec-dram': {
    label: 'one 32768 × 1024 matvec (+1 thin layer)',
    dim: 1024, layers: 1, heads: 8, kvHeads: 8, headDim: 128, ffn: 256, vocab: 32768, tied: true,
    ropeFreqBase: 10000, rmsEps: 1e-5, trainedContext: 1024,
  },
  'matvec-cache': {
    label: 'one 4096 × 256 matvec (+1 thin layer)',
    dim: 256, layers: 1, heads: 2, kvHeads: 2, headDim: 128, ffn: 256, vocab: 4096, tied: true,
    ropeFreqBase: 10000, rmsEps: 1e-5, trainedContext: 1024,
  },
};
