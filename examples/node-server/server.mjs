#!/usr/bin/env node
/**
 * The same OpenAI-compatible app as the Cloudflare Worker, on Node with @hono/node-server.
 *
 *   MODEL=path/to/model.gguf [RECYCLE=head.gguf] [PORT=8080] [HOST=127.0.0.1] [API_KEY=...] node examples/node-server/server.mjs
 */
import { basename } from 'node:path';
import { serve } from '@hono/node-server';
import { createApp, lazyModels } from '@recyclegpt/workers';
import { loadModel } from 'recyclegpt';

const { MODEL, RECYCLE, PORT = '8080', HOST = '127.0.0.1', API_KEY, MODEL_ID, CORS_ORIGIN } = process.env;
if (!MODEL) {
  console.error('Set MODEL to the path of a GGUF file, e.g. MODEL=models/demo/demo.gguf node examples/node-server/server.mjs');
  process.exit(1);
}

const id = MODEL_ID || basename(MODEL).replace(/\.gguf$/i, '');
// backend 'auto': WebGPU where the host has it, else the WASM engine.
const load = () => loadModel(MODEL, { recycle: RECYCLE, backend: 'auto' });
const models = lazyModels([{ id, load }]);
// Load at start rather than on the first request: a server on a long-lived host can afford to wait.
await models.get(id);

const app = createApp({ models, auth: { apiKey: API_KEY }, cors: CORS_ORIGIN ? { origin: CORS_ORIGIN } : undefined });
const server = serve({ fetch: app.fetch, port: Number(PORT), hostname: HOST }, (info) => {
  console.log(`RecycleGPT serving '${id}' on http://${info.address}:${info.port} (playground at /, API at /v1)`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
