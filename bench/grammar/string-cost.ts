/**
 * What a bounded string costs the mask against a free one (`npx tsx bench/grammar/string-cost.ts`): the same
 * 60-character value under `{ type: 'string' }` and `{ type: 'string', maxLength: 80 }`, first pass over a fresh
 * compile (after a warm-up compile), at 49k and 151k vocabularies, in process CPU time. Prints markdown.
 */
import { compileConstraint, type JsonSchema } from '../../sdk/src/grammar/index.js';
import { qwenVocab, sdkTokenizer } from './vocabularies.js';

const TEXT = JSON.stringify({ note: 'The quick brown fox jumps over the lazy dog, twice: 2 times!!' });
const SCHEMAS: Record<string, JsonSchema> = {
  free: { type: 'object', properties: { note: { type: 'string' } }, required: ['note'] },
  'maxLength 80': { type: 'object', properties: { note: { type: 'string', maxLength: 80 } }, required: ['note'] },
};

const cpuNow = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

console.log('| vocab | string | tokens | cold mask µs/token | worst cold ms | warm µs/token |');
console.log('| --- | --- | ---: | ---: | ---: | ---: |');
for (const [label, size] of [['49k', 49_152], ['151k', 151_669]] as const) {
  const tokenizer = sdkTokenizer(qwenVocab(size));
  const ids = tokenizer.encode(TEXT, { addSpecial: false });
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    const pass = (fresh: boolean) => {
      // A schema object of its own each time, so the compiled-format cache does not answer.
      const constraint = compileConstraint({ type: 'json_schema', schema: structuredClone(schema), name: `${Math.random()}` }, tokenizer)!;
      const run = () => {
        let state = constraint.start();
        let worst = 0;
        const start = cpuNow();
        for (const id of ids) {
          const t0 = cpuNow();
          state.mask();
          state = state.advance(id)!;
          worst = Math.max(worst, cpuNow() - t0);
        }
        return { us: ((cpuNow() - start) * 1000) / ids.length, worst };
      };
      const cold = run();
      return fresh ? { cold, warm: run() } : undefined;
    };
    pass(false); // the JIT's warm-up
    const { cold, warm } = pass(true)!;
    console.log(`| ${label} | ${name} | ${ids.length} | ${cold.us.toFixed(0)} | ${cold.worst.toFixed(1)} | ${warm.us.toFixed(1)} |`);
  }
}
