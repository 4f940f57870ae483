// The bare-forward probe (bench/forward/core.mjs) behind a fetch handler, so that the same code is
// served by workerd (probe-worker.mjs) and by Node (probe-node.mjs) and timed the same way from outside.
//   /build?shape=smollm2-135m&type=q8_0   a random model (replaces the previous one)
//   /decode?steps=32&from=0                greedy decode steps from position `from`
//   /prefill?n=512                         a prompt from position 0, in passes of 32 tokens
//   /passes?n=2&count=10                   n-token passes at position 64, logits for every row
//   /features                              what the runtime's WebAssembly supports (relaxed SIMD), and what the
//                                          engine module runs: rg_kernel_set, and rg_relaxed_ok (exact here)
// Every answer: { ms } measured inside (wall clock), the engine's memory size, the model's size.
import { buildRandomModel, decodeSteps, freeModel, passes, prefillPrompt, wasmFeatures } from '../forward/core.mjs';
import { SHAPES } from '../forward/shapes.mjs';

export function makeHandler(engineModule) {
  let rg;
  let probe;
  return async function handle(request) {
    const url = new URL(request.url);
    const arg = (name, fallback) => url.searchParams.get(name) ?? fallback;
    rg ??= (await WebAssembly.instantiate(engineModule, {})).exports;
    const t0 = performance.now();
    try {
      switch (url.pathname) {
        case '/build': {
          const shape = SHAPES[arg('shape')];
          if (!shape) return Response.json({ error: `unknown shape ${arg('shape')}` }, { status: 400 });
          if (probe) freeModel(rg, probe);
          probe = buildRandomModel(rg, shape, arg('type', 'q8_0'), { ctx: Number(arg('ctx', 1024)) });
          break;
        }
        case '/decode':
          decodeSteps(rg, probe, Number(arg('steps', 32)), Number(arg('from', 0)));
          break;
        case '/prefill':
          prefillPrompt(rg, probe, Number(arg('n', 512)));
          break;
        case '/passes':
          passes(rg, probe, Number(arg('n', 1)), Number(arg('count', 10)));
          break;
        case '/health':
          break;
        case '/features':
          return Response.json({ ...wasmFeatures(), kernelSet: rg.rg_kernel_set(), relaxedOk: rg.rg_relaxed_ok() === 1 });
        default:
          return Response.json({ error: `no route ${url.pathname}` }, { status: 404 });
      }
    } catch (error) {
      return Response.json({ error: String(error) }, { status: 500 });
    }
    return Response.json({ ms: performance.now() - t0, memoryBytes: rg.memory.buffer.byteLength, params: probe?.params, weightBytes: probe?.weightBytes });
  };
}
