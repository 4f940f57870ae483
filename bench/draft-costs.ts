/**
 * Calibrates the drafting cost model (sdk/src/decode/cost-model.ts) against timed passes: for each base model with a
 * recycle head, t(k)/t(1) for k = 2, 3, 4 and a head row over t(1), timed (process CPU time, so that other processes
 * on a shared machine count less; fastest of ROUNDS, interleaved) and as the model counts them, and the BYTE_COST
 * each model's t(2)/t(1) implies. `npx tsx bench/draft-costs.ts [base.gguf+head.gguf …]`; without arguments, the demo
 * model in each type and a same-shape random model in F32 (with a random head).
 */
import '../sdk/src/node.js';
import { fileURLToPath } from 'node:url';
import { makeTestModel } from '../test/fixtures/models.js';
import { makeTestHead } from '../test/fixtures/recycle-head.js';
import { BYTE_COST, MODEL_POSITION, modeledDraftCost } from '../sdk/src/decode/cost-model.js';
import { openContext } from '../sdk/src/model.js';

const ROUNDS = Number(process.env.ROUNDS ?? 20);
const demo = (file: string) => fileURLToPath(new URL(`../models/demo/${file}`, import.meta.url));

async function defaults(): Promise<string[]> {
  const pairs = ['q8_0', 'q4_0', 'f16'].map((t) => `${demo(`demo-${t}.gguf`)}+${demo('demo-recycle.gguf')}`);
  // The demo's shape in F32, which no demo file has.
  const f32 = await makeTestModel({ dim: 256, layers: 6, heads: 8, kvHeads: 4, ffn: 704, vocab: 'llama', type: 'F32', ctx: 256, seed: 11 });
  const head = makeTestHead(f32, { kind: 'random', layers: 1, heads: 8, kvHeads: 4, ffn: 704, type: 'F32', seed: 12 });
  return [...pairs, `${f32}+${head}`];
}

/** CPU milliseconds of one call of each case, fastest of ROUNDS rounds (cases interleaved), `reps` calls a sample. */
function cpuTimes(cases: Record<string, () => void>, reps: number): Record<string, number> {
  const best: Record<string, number> = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, run] of Object.entries(cases)) {
      const start = process.cpuUsage();
      for (let i = 0; i < reps; i++) run();
      const used = process.cpuUsage(start);
      best[name] = Math.min(best[name] ?? Infinity, (used.user + used.system) / 1000 / reps);
    }
  }
  return best;
}

const pairs = process.argv.length > 2 ? process.argv.slice(2) : await defaults();
console.log(`BYTE_COST ${BYTE_COST}; passes at position ${MODEL_POSITION}; CPU time, fastest of ${ROUNDS}.`);
console.log('| model | t(1) ms | t(2)/t(1) timed / modeled | t(3)/t(1) | t(4)/t(1) | head ÷ t(1) | BYTE_COST from t(2) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const pair of pairs) {
  const [basePath, headPath] = pair.split('+') as [string, string];
  const { context, info } = await openContext(basePath, { recycle: headPath, sequences: 1 });
  const llama = context.llama;
  const ids = Array.from({ length: MODEL_POSITION + 4 }, (_, i) => (i * 7 + 3) % info.vocabSize);
  await context.prefill(ids.slice(0, MODEL_POSITION), false, false);
  const pos = MODEL_POSITION;
  const reps = Math.max(1, Math.round(2e6 / info.parameters)); // ~ equal time per sample
  const t = cpuTimes(
    {
      1: () => llama.forward(ids.slice(0, 1), pos, 0),
      2: () => llama.forward(ids.slice(0, 2), pos, 0),
      3: () => llama.forward(ids.slice(0, 3), pos, 0),
      4: () => llama.forward(ids.slice(0, 4), pos, 0),
      head: () => llama.recycleForward('base', 0, [ids[pos]!], pos, 0),
    },
    reps,
  );
  const counts = context.draftCounts!;
  const model = (drafts: number) => modeledDraftCost(counts, drafts);
  const r = (k: number) => t[k]! / t[1]!;
  const cell = (timed: number, modeled: number) => `${timed.toFixed(2)} / ${modeled.toFixed(2)}`;
  const { bytes, macs } = counts.base;
  const fitted = (macs * (2 - r(2))) / (bytes * (r(2) - 1));
  const name = basePath.split('/').pop()!.replace(/\.gguf$/, '');
  console.log(
    `| ${name} | ${t[1]!.toFixed(3)} | ${cell(r(2), model(1).pass)} | ${cell(r(3), model(2).pass)} | ${cell(r(4), model(3).pass)} | ` +
      `${cell(t.head! / t[1]!, model(1).head)} | ${fitted.toFixed(2)} |`,
  );
  llama.free();
}
