/**
 * `npx tsx bench/grammar/run.ts`: our constraint engine against @mlc-ai/web-xgrammar 0.1.27 on Qwen's 151k
 * vocabulary and a 49k one, in Node and inside workerd (wrangler dev), plus each engine's bundle size.
 * Prints a table and writes bench/grammar/results.json; nothing asserts on timings. See README.md here.
 */
import { spawn, spawnSync } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { measureOurs, measureXGrammar, BENCH_OUTPUT, BENCH_SCHEMA, type EngineFigures, type XGrammarModule } from './measure.js';
import { qwenVocab, sdkTokenizer, VOCAB_SIZES } from './vocabularies.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const PORT = 8791;

async function bundleSizes() {
  const ours = await build({ entryPoints: [join(root, 'sdk/src/grammar/index.ts')], bundle: true, minify: true, format: 'esm', write: false, logLevel: 'error' });
  const oursJs = ours.outputFiles[0]!.contents;
  const wasm = readFileSync(join(here, '.build/xgrammar.wasm'));
  const glue = await build({ entryPoints: [join(here, '.build/xgrammar.mjs')], bundle: true, minify: true, format: 'esm', write: false, logLevel: 'error' });
  const glueJs = glue.outputFiles[0]!.contents;
  const kb = (n: number) => Math.round(n / 102.4) / 10;
  return {
    ours: { rawKB: kb(oursJs.length), gzKB: kb(gzipSync(oursJs, { level: 9 }).length) },
    xgrammar: { rawKB: kb(wasm.length + glueJs.length), gzKB: kb(gzipSync(wasm, { level: 9 }).length + gzipSync(glueJs, { level: 9 }).length), wasmGzKB: kb(gzipSync(wasm, { level: 9 }).length) },
  };
}

async function startWorkerd(): Promise<() => void> {
  const wrangler = join(root, 'node_modules/wrangler/bin/wrangler.js');
  const log = openSync(join(here, '.build/wrangler.log'), 'w');
  const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_SEND_ERROR_REPORTS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' };
  const child = spawn(process.execPath, [wrangler, 'dev', '-c', join(here, 'worker/wrangler.toml'), '--port', String(PORT)], { env, stdio: ['ignore', log, log] });
  for (let i = 0; i < 120; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}`);
    try {
      await fetch(`http://127.0.0.1:${PORT}/`);
      return () => child.kill();
    } catch {
      /* not up yet */
    }
  }
  child.kill();
  throw new Error('wrangler dev did not start in 120 s');
}

async function main() {
  spawnSync(process.execPath, [join(here, 'xgrammar-bundle.mjs')], { stdio: 'inherit' });
  const xg = (await import(join(here, '.build/xgrammar.mjs'))) as XGrammarModule & { init(m: WebAssembly.Module): void };
  xg.init(new WebAssembly.Module(readFileSync(join(here, '.build/xgrammar.wasm'))));
  const sizes = await bundleSizes();
  const rows: Array<{ vocab: string; runtime: string; engine: string; figures: EngineFigures }> = [];
  for (const [label, size] of Object.entries(VOCAB_SIZES).filter(([l]) => !process.argv[2] || l === process.argv[2])) {
    // A fresh workerd per vocabulary: each isolate starts cold, as a Worker's first request does.
    const stopWorkerd = await startWorkerd();
    try {
      const data = qwenVocab(size);
      const tok = sdkTokenizer(data);
      const ids = tok.encode(BENCH_OUTPUT, { addSpecial: false });
      console.log(`${label}: ${ids.length} tokens of output`);
      rows.push({ vocab: label, runtime: 'node', engine: 'ours', figures: measureOurs(() => tok, BENCH_SCHEMA, ids, data.eos) });
      rows.push({ vocab: label, runtime: 'node', engine: 'xgrammar', figures: await measureXGrammar(xg, data.tokens, BENCH_SCHEMA, ids, data.eos) });
      const response = await fetch(`http://127.0.0.1:${PORT}/`, { method: 'POST', body: JSON.stringify({ tokens: data.tokens, types: data.types, eos: data.eos, schema: BENCH_SCHEMA, ids }) });
      if (!response.ok) throw new Error(`worker: ${response.status} ${await response.text()}`);
      const inWorker = (await response.json()) as { ours: EngineFigures; xgrammar: EngineFigures };
      rows.push({ vocab: label, runtime: 'workerd', engine: 'ours', figures: inWorker.ours });
      rows.push({ vocab: label, runtime: 'workerd', engine: 'xgrammar', figures: inWorker.xgrammar });
      console.log(JSON.stringify(rows.slice(-4)));
    } finally {
      stopWorkerd();
    }
  }
  const f = (x: number, d = 1) => x.toFixed(d);
  console.log('\n| vocab | runtime | engine | vocab prep ms | schema compile ms | mask µs/token cold | mask µs/token warm | worst mask ms | output accepted |');
  console.log('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const { vocab, runtime, engine, figures: r } of rows) {
    console.log(`| ${vocab} | ${runtime} | ${engine} | ${f(r.vocabMs, 0)} | ${f(r.compileMs)} | ${f(r.coldUsPerToken, 0)} | ${f(r.warmUsPerToken, 0)} | ${f(r.coldMaxMs)} | ${r.accepted} |`);
  }
  console.log(`\nbundle: ours ${sizes.ours.gzKB} KB gz (${sizes.ours.rawKB} KB), xgrammar ${sizes.xgrammar.gzKB} KB gz (${sizes.xgrammar.rawKB} KB; WebAssembly ${sizes.xgrammar.wasmGzKB} KB gz)`);
  const machine = { cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadavg: os.loadavg() };
  writeFileSync(join(here, 'results.json'), `${JSON.stringify({ date: new Date().toISOString(), machine, sizes, rows }, null, 2)}\n`);
}

await main();
