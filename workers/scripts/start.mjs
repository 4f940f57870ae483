#!/usr/bin/env node
/**
 * `npm start`: build, put a model into local R2, run the Worker with `wrangler dev`, fully offline.
 *
 *   node workers/scripts/start.mjs [--skip-build] [--port 8787] [--model file.gguf] [--recycle head.gguf] [--persist-to dir] [--var NAME:VALUE]…
 *
 * The model is --model, else models/demo/*.gguf (a file named *recycle* there is the recycle head),
 * else a small random-weight test model from test/fixtures/models.ts (it writes nonsense, but it runs).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('../../', import.meta.url));
const { values: args } = parseArgs({
  options: {
    'skip-build': { type: 'boolean', default: false },
    port: { type: 'string', default: '8787' },
    model: { type: 'string' },
    recycle: { type: 'string' },
    'persist-to': { type: 'string', default: join(root, '.wrangler', 'state') },
    // More Worker variables (wrangler dev's --var), e.g. --var MAX_QUEUE:4 --var API_KEY:secret.
    var: { type: 'string', multiple: true, default: [] },
  },
});
// Wrangler must not phone home: no metrics, no error reports, no request.cf lookup.
const offline = { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_SEND_ERROR_REPORTS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' };
const wrangler = join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const BUCKET = 'recyclegpt-models';

function run(command, commandArgs) {
  const result = spawnSync(command, commandArgs, { cwd: root, env: offline, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`start: \`${[command, ...commandArgs].join(' ')}\` failed (exit ${result.status ?? result.signal}).`);
    process.exit(1);
  }
}

/** A small model from the test fixtures, bundled with esbuild because Node cannot import TypeScript. */
async function generatedTestModel() {
  const { build } = await import('esbuild');
  // The fixture caches models in ../.cache/ next to itself: here .tmp/.cache/ (gitignored).
  const outfile = join(root, '.tmp', 'start', 'models.mjs');
  await build({ entryPoints: [join(root, 'test', 'fixtures', 'models.ts')], bundle: true, platform: 'node', format: 'esm', outfile, logLevel: 'error' });
  const { makeTestModel, STANDARD_SPECS } = await import(pathToFileURL(outfile).href);
  return makeTestModel(STANDARD_SPECS.q8_llama_tied);
}

/** What the playground says about the bundled models (a file of your own is described by its GGUF). */
const DEMO_DESCRIPTION = 'the bundled demo: a 5M-parameter test model that does not write sensible text';
const RANDOM_DESCRIPTION = 'a small random-weight test model: it writes nonsense';

async function chooseModels() {
  if (args.model) return { model: resolve(args.model), recycle: args.recycle && resolve(args.recycle) };
  const demoDir = join(root, 'models', 'demo');
  const demo = existsSync(demoDir) ? readdirSync(demoDir).filter((f) => f.endsWith('.gguf')).sort() : [];
  // Q8_0 when there is one: the Worker-sized trade-off between quality and memory.
  const bases = demo.filter((f) => !f.includes('recycle'));
  const base = bases.find((f) => f.includes('q8_0')) ?? bases[0];
  if (base) {
    const head = demo.find((f) => f.includes('recycle'));
    return { model: join(demoDir, base), recycle: head && join(demoDir, head), description: DEMO_DESCRIPTION };
  }
  console.log('start: no models/demo/*.gguf; generating a small random-weight test model.');
  return { model: await generatedTestModel(), recycle: undefined, description: RANDOM_DESCRIPTION };
}

/** Puts a file into the local R2 bucket under its file name and returns that key. */
function upload(file) {
  const key = basename(file);
  run(process.execPath, [wrangler, 'r2', 'object', 'put', `${BUCKET}/${key}`, '--file', file, '--local', '--persist-to', args['persist-to']]);
  return key;
}

if (!args['skip-build']) run('npm', ['run', 'build']);
const { model, recycle, description } = await chooseModels();
const vars = [`MODEL_KEY:${upload(model)}`];
if (recycle) vars.push(`RECYCLE_KEY:${upload(recycle)}`);
if (description) vars.push(`MODEL_DESCRIPTION:${description}`);
// The caller's --var come last: wrangler takes the last value of a name.
vars.push(...args.var);

const dev = spawn(
  process.execPath,
  [wrangler, 'dev', '--ip', '127.0.0.1', '--port', args.port, '--persist-to', args['persist-to'], '--show-interactive-dev-session=false', ...vars.flatMap((v) => ['--var', v])],
  { cwd: root, env: offline, stdio: 'inherit' },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => dev.kill(signal));
dev.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
