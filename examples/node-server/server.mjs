#!/usr/bin/env node
/**
 * The same OpenAI-compatible app as the Cloudflare Worker, on Node with @hono/node-server.
 *
 *   MODEL=path/to/model.gguf [RECYCLE=head.gguf] [PORT=8080] [HOST=127.0.0.1] [API_KEY=...] [MAX_TOKENS=512] node examples/node-server/server.mjs
 */
import { basename } from 'node:path';
import { serve } from '@hono/node-server';
import { createApp, lazyModels } from '@recyclegpt/workers';
import { loadModel, provideNodeWebGPU } from 'recyclegpt';

const { MODEL, RECYCLE, PORT = '8080', HOST = '127.0.0.1', API_KEY, MODEL_ID, CORS_ORIGIN, MAX_TOKENS } = process.env;
if (!MODEL) {
  console.error('Set MODEL to the path of a GGUF file, e.g. MODEL=models/demo/demo-q8_0.gguf node examples/node-server/server.mjs');
  process.exit(1);
}

const id = MODEL_ID || basename(MODEL).replace(/\.gguf$/i, '');
// Node has no navigator.gpu: Dawn's, when the optional `webgpu` package is installed (a GPU host).
const gpu = await provideNodeWebGPU();
// backend 'auto': WebGPU where the host has it, else the WASM engine.
const load = () => loadModel(MODEL, { recycle: RECYCLE, backend: 'auto' });
const models = lazyModels([{ id, load }]);
// Load at start rather than on the first request: a server on a long-lived host can afford to wait.
const { info } = await models.get(id);
console.log(`backend: ${info.backend} (${typeof gpu === 'string' && info.backend === 'wasm' ? gpu : info.backendReason})`);

const app = createApp({
  models,
  auth: { apiKey: API_KEY },
  cors: CORS_ORIGIN ? { origin: CORS_ORIGIN } : undefined,
  limits: { maxTokens: MAX_TOKENS ? Number(MAX_TOKENS) : undefined },
});
const server = serve({ fetch: app.fetch, port: Number(PORT), hostname: HOST }, (info) => {
  console.log(`RecycleGPT serving '${id}' on http://${info.address}:${info.port} (playground at /, API at /v1)`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
