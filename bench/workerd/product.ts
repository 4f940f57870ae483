/**
 * `npx tsx bench/workerd/product.ts [--type q4_0] [--rounds 6] [--steps 32]`: the product's Worker
 * (workers/src/worker.ts: the OpenAI routes, the model from local R2) under the Miniflare API and under
 * `wrangler dev` (what `npm start` runs: a second workerd with its inspector and wrangler's inspector proxy
 * attached), against the SDK served by Node and by a bare workerd (sdk-handler.ts), taking turns round by
 * round. Decode CPU ms per step of the serving process(es), by difference of a 1-token and an n-token
 * request (the best of each). Prints a table; asserts nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { startDevServer } from '../../workers/test/dev-server.js';
import { benchModelPath, type FileTypeName } from '../models.js';
import { promptIds } from '../prompt.js';
import { bundleProductWorker, startWorker } from './miniflare.js';
import { callJson } from './http.js';
import { processCpuMs, workerdBelow } from './proc.js';
import { serve } from './runtimes.js';

const { values: opt } = parseArgs({
  options: { type: { type: 'string', default: 'q4_0' }, rounds: { type: 'string', default: '6' }, steps: { type: 'string', default: '32' } },
});
const model = benchModelPath({ shape: 'smollm2-135m', fileType: opt.type!.toUpperCase() as FileTypeName }, console.log);
const ids = await promptIds(model);
const steps = Number(opt.steps);
const scratch = mkdtempSync(join(tmpdir(), 'rg-product-'));

interface Subject {
  name: string;
  /** CPU ms of the process(es) serving it so far. */
  cpu(): number;
  /** A greedy completion of `maxTokens` tokens after the prompt. */
  complete(maxTokens: number): Promise<unknown>;
  stop(): Promise<void>;
}

/** A greedy completion through the OpenAI route, for the model the Worker serves as `id`. */
function completions(url: string, id: string, maxTokens: number): Promise<unknown> {
  return callJson(url, '/v1/completions', { model: id, prompt: ids, max_tokens: maxTokens, temperature: 0 });
}

async function sdkSubject(kind: 'node' | 'workerd'): Promise<Subject> {
  const served = await serve({ kind, flags: [] }, 'sdk', scratch, dirname(model));
  await served.request('/load', { key: basename(model), contextLength: 1024 });
  return {
    name: `SDK in ${kind} (sdk-handler.ts)`,
    cpu: () => processCpuMs(served.pid),
    complete: (maxTokens) => served.request('/run', { promptIds: ids, maxTokens }),
    stop: () => served.stop(),
  };
}

async function miniflareSubject(): Promise<Subject> {
  const options = { scriptPath: bundleProductWorker(join(scratch, 'bundle')), persistDir: join(scratch, 'state'), bindings: { MODEL_KEY: basename(model), MODEL_ID: 'bench', CONTEXT_LENGTH: '1024' } };
  const worker = await startWorker(options);
  await worker.upload(basename(model), model);
  return { name: 'product Worker, Miniflare API', cpu: () => worker.cpuMs(), complete: (n) => completions(worker.url, 'bench', n), stop: () => worker.dispose() };
}

async function wranglerDevSubject(): Promise<Subject> {
  const dev = await startDevServer({ model, persistTo: join(scratch, 'dev') });
  const pids = workerdBelow(dev.process.pid!);
  // npm start names the model after its file; the routes take that id.
  const id = basename(model, '.gguf');
  const cpu = () => pids.reduce((sum, p) => sum + processCpuMs(p), 0);
  return { name: 'product Worker, wrangler dev (npm start)', cpu, complete: (n) => completions(dev.url, id, n), stop: () => dev.stop() };
}

const subjects: Subject[] = [];
try {
  for (const start of [() => sdkSubject('node'), () => sdkSubject('workerd'), miniflareSubject, wranglerDevSubject]) {
    const subject = await start();
    subjects.push(subject);
    await subject.complete(steps + 1); // warm-up: the model loads on the first request; V8 tiers up
    console.log(`  ${subject.name}: ready`);
  }
  const best = subjects.map(() => ({ one: Infinity, many: Infinity }));
  for (let round = 0; round < Number(opt.rounds); round++) {
    for (let i = 0; i < subjects.length; i++) {
      const k = (i + round) % subjects.length;
      const s = subjects[k]!;
      let c = s.cpu();
      await s.complete(1);
      best[k]!.one = Math.min(best[k]!.one, s.cpu() - c);
      c = s.cpu();
      await s.complete(steps + 1);
      best[k]!.many = Math.min(best[k]!.many, s.cpu() - c);
    }
    console.log(`  round ${round + 1}: ${subjects.map((s, k) => `${s.name} ${((best[k]!.many - best[k]!.one) / steps).toFixed(2)}`).join(', ')}`);
  }
  const base = (best[0]!.many - best[0]!.one) / steps;
  console.log(`\nsmollm2-135m-${opt.type}: decode CPU ms per step of the serving process(es), best of ${opt.rounds} interleaved rounds\n`);
  console.log('| serving | decode ms/step | speed ÷ SDK in Node |\n| --- | ---: | ---: |');
  subjects.forEach((s, k) => {
    const ms = (best[k]!.many - best[k]!.one) / steps;
    console.log(`| ${s.name} | ${ms.toFixed(2)} | ${(base / ms).toFixed(2)}× |`);
  });
} finally {
  for (const s of subjects) await s.stop();
  rmSync(scratch, { recursive: true, force: true });
}
