/// <reference lib="dom" />
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestModel, type ModelSpec } from '../../test/fixtures/models.js';

/**
 * The example server (node server.mjs) over a real socket: a client that leaves, streamed or not, stops its
 * generation within moments (@hono/node-server aborts the request's signal when the socket closes), the model is
 * free for the next request, and the process is idle meanwhile. "Moments" is measured against the same generation
 * run to its end, on the same machine at the same time.
 */
const script = fileURLToPath(new URL('./server.mjs', import.meta.url));
/** A random model with a long context: a 1000-token generation holds it for seconds. */
const LONG: ModelSpec = { dim: 256, layers: 4, heads: 4, kvHeads: 4, ffn: 688, vocab: 'llama', type: 'Q8_0', ctx: 2048, seed: 12 };
let server: ChildProcess;
let url: string;
let log = '';
/** The generation the tests abandon; with its seed it runs all 1000 tokens (no end-of-text token on the way). */
const LONG_REQUEST = { prompt: 'Once upon a time', max_tokens: 1000, temperature: 0.8, seed: 7 };
let fullMs = 0;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

/** utime + stime of the server process, in seconds (Linux: 100 ticks a second). */
function cpuSeconds(): number {
  const fields = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

beforeAll(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  server = spawn(process.execPath, [script], { env: { ...process.env, MODEL: await makeTestModel(LONG), MODEL_ID: 'long', PORT: String(port), MAX_TOKENS: '1000' }, stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout!.on('data', (d) => (log += d));
  server.stderr!.on('data', (d) => (log += d));
  const started = performance.now();
  while (!log.includes('RecycleGPT serving')) {
    if (server.exitCode !== null || performance.now() - started > 120_000) throw new Error(`the example server did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const fullStarted = performance.now();
  const full = (await (await post({ ...LONG_REQUEST, stream: false })).json()) as { usage: { completion_tokens: number } };
  fullMs = performance.now() - fullStarted;
  expect(full.usage.completion_tokens).toBe(1000);
});

afterAll(() => {
  server?.kill('SIGTERM');
});

const post = (body: object, signal?: AbortSignal) =>
  fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'long', ...body }), signal });

/** Polls /healthz until nothing runs or waits; returns how long that took. */
async function idle(): Promise<number> {
  const started = performance.now();
  for (;;) {
    const { models } = (await (await fetch(`${url}/healthz`)).json()) as { models: { running: number; queued: number }[] };
    if (models[0]!.running === 0 && models[0]!.queued === 0) return performance.now() - started;
    if (performance.now() - started > 30_000) throw new Error('still generating 30 s after the client left');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('examples/node-server: a client that leaves', () => {
  it.each([true, false])('stream %s: the generation stops, the process goes idle, and the next request is answered', async (stream) => {
    const abort = new AbortController();
    const res = await post({ ...LONG_REQUEST, stream }, abort.signal);
    expect(res.status).toBe(200);
    // The first token (streamed) or the first of the spaces a non-streamed response sends per token.
    await res.body!.getReader().read();
    abort.abort();
    // Run on, it would keep the model busy for nearly fullMs more.
    const stoppedMs = await idle();
    console.log(`stream ${stream}: stopped ${Math.round(stoppedMs)} ms after the client left; the whole generation takes ${Math.round(fullMs)} ms`);
    expect(stoppedMs).toBeLessThan(fullMs / 4);
    const before = cpuSeconds();
    await new Promise((r) => setTimeout(r, 1000));
    expect(cpuSeconds() - before).toBeLessThan(0.2);
    const started = performance.now();
    const next = await post({ prompt: 'Next', max_tokens: 4, temperature: 0 });
    expect(((await next.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(4);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
