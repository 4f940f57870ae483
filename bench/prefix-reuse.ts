/**
 * Prefix reuse across chat turns, as the Worker serves them: time to first token of turn 5 of a conversation when the
 * previous turn's KV cache is still there (the client resends the whole conversation; only what follows the common
 * prefix runs) and when another conversation ran in between (the one cached sequence is gone).
 *
 *   npx tsx bench/prefix-reuse.ts [--reps 5] [--no-readme]
 *
 * The routes of workers/src/app.ts run in-process (app.request, no socket) over the SDK, greedy, streamed; the time
 * is from the request to its first token chunk. Models: the demo (models/demo, as `npm start` serves it, with its
 * recycle head, and without) and a random-weight model shaped like SmolLM2-135M (test/fixtures/models.ts, the `smollm`
 * stand-in vocabulary with its ChatML template). Writes bench/results/prefix-reuse.json and the table in
 * bench/README.md between its prefix-reuse markers. A measurement, not a test: one run, medians of `reps`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModel, type Model } from '../sdk/src/node.js';
import { makeTestModel, type ModelSpec } from '../test/fixtures/models.js';
import { createApp, lazyModels } from '../workers/src/app.js';

const { values: args } = parseArgs({ options: { reps: { type: 'string', default: '5' }, 'no-readme': { type: 'boolean', default: false } } });
const REPS = Number(args.reps);
const ANSWER_TOKENS = 24;
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** SmolLM2-135M's shape (HuggingFaceTB/SmolLM2-135M config.json), Q8_0, random weights. */
const SMOLLM2_135M: ModelSpec = { dim: 576, layers: 30, heads: 9, kvHeads: 3, ffn: 1536, vocab: 'smollm', type: 'Q8_0', tiedOutput: true, ctx: 8192, seed: 135 };

interface Case {
  name: string;
  load(): Promise<Model>;
}

const CASES: Case[] = [
  { name: 'demo Q8_0 + recycle head (as `npm start`)', load: () => loadModel(here('../models/demo/demo-q8_0.gguf'), { recycle: here('../models/demo/demo-recycle.gguf') }) },
  { name: 'demo Q8_0, no head', load: () => loadModel(here('../models/demo/demo-q8_0.gguf')) },
  { name: 'SmolLM2-135M shape, Q8_0, random', load: async () => loadModel(await makeTestModel(SMOLLM2_135M), { contextLength: 1024 }) },
];

const QUESTIONS = ['How do I read a file?', 'And write one?', 'What about binary data?', 'How do I close it?', 'Can a context manager do that?'];
const OTHER = [{ role: 'user', content: 'Something else entirely: what is a tuple?' }];

type Message = { role: string; content: string };
interface Turn {
  ttftMs: number;
  promptTokens: number;
  reusedTokens: number;
  answer: string;
}

/** One streamed chat request through the app: time to the first token chunk, the answer, the final stats. */
async function chat(app: ReturnType<typeof createApp>, messages: Message[]): Promise<Turn> {
  const started = performance.now();
  const res = await app.request('/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages, max_tokens: ANSWER_TOKENS, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let ttftMs = 0;
  let buffer = '';
  let answer = '';
  let reusedTokens = 0;
  let promptTokens = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!block.startsWith('data: {')) continue;
      const chunk = JSON.parse(block.slice(6));
      if (chunk.recyclegpt?.source && !ttftMs) ttftMs = performance.now() - started;
      answer += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.recyclegpt?.reused_prompt_tokens !== undefined) reusedTokens = chunk.recyclegpt.reused_prompt_tokens;
      if (chunk.usage) promptTokens = chunk.usage.prompt_tokens;
    }
  }
  return { ttftMs, promptTokens, reusedTokens, answer };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Row {
  model: string;
  promptTokens: number;
  reused: { ttftMs: number; reusedTokens: number };
  fresh: { ttftMs: number; reusedTokens: number };
}

async function measure(c: Case): Promise<Row> {
  const model = await c.load();
  const app = createApp({ models: lazyModels([{ id: 'm', load: async () => model }]), limits: { maxTokens: 256, maxPromptTokens: 1024 } });
  try {
    // Turns 1–4 once, greedy: their answers are the same every time, so the conversation is too.
    const messages: Message[] = [];
    for (const question of QUESTIONS.slice(0, 4)) {
      messages.push({ role: 'user', content: question });
      messages.push({ role: 'assistant', content: (await chat(app, messages)).answer });
    }
    const turn4 = messages.slice(0, -1);
    const turn5 = [...messages, { role: 'user', content: QUESTIONS[4]! }];
    const reused: Turn[] = [];
    const fresh: Turn[] = [];
    // Interleaved: turn 5 right after turn 4 (the cache holds it), then after another conversation.
    for (let rep = 0; rep < REPS; rep++) {
      await chat(app, turn4);
      reused.push(await chat(app, turn5));
      await chat(app, OTHER);
      fresh.push(await chat(app, turn5));
    }
    const summary = (turns: Turn[]) => ({ ttftMs: Math.round(median(turns.map((t) => t.ttftMs)) * 10) / 10, reusedTokens: turns[0]!.reusedTokens });
    return { model: c.name, promptTokens: reused[0]!.promptTokens, reused: summary(reused), fresh: summary(fresh) };
  } finally {
    model.dispose();
  }
}

const rows: Row[] = [];
const loadBefore = os.loadavg()[0]!;
for (const c of CASES) {
  const row = await measure(c);
  rows.push(row);
  console.log(`${row.model}: turn 5 prompt ${row.promptTokens} tokens; reused ${row.reused.reusedTokens} → ${row.reused.ttftMs} ms, after another conversation reused ${row.fresh.reusedTokens} → ${row.fresh.ttftMs} ms`);
}
const loadAfter = os.loadavg()[0]!;

const date = new Date().toISOString().slice(0, 10);
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const table = [
  `<!-- prefix-reuse:start (written by bench/prefix-reuse.ts) -->`,
  `${date}, ${cpu}, load average ${loadBefore.toFixed(1)} → ${loadAfter.toFixed(1)} (a shared machine: provisional), median of ${REPS}:`,
  '',
  '| model | turn-5 prompt tokens | reused, turn 4 cached | time to first token | reused, another chat in between | time to first token | ratio |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.model} | ${r.promptTokens} | ${r.reused.reusedTokens} | ${r.reused.ttftMs} ms | ${r.fresh.reusedTokens} | ${r.fresh.ttftMs} ms | ${(r.fresh.ttftMs / r.reused.ttftMs).toFixed(1)}× |`),
  `<!-- prefix-reuse:end -->`,
].join('\n');
console.log(`\n${table}`);
writeFileSync(here('results/prefix-reuse.json'), `${JSON.stringify({ date, cpu, loadBefore, loadAfter, reps: REPS, answerTokens: ANSWER_TOKENS, rows }, null, 2)}\n`);
if (!args['no-readme']) {
  const readme = here('README.md');
  const text = readFileSync(readme, 'utf8');
  const marked = /<!-- prefix-reuse:start[\s\S]*?<!-- prefix-reuse:end -->/;
  if (!marked.test(text)) throw new Error('bench/README.md has no prefix-reuse markers');
  writeFileSync(readme, text.replace(marked, table));
}
