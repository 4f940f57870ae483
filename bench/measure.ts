/** Runs one engine on one model: load, a warm-up decode, then the best of a few timed decodes. */
import type { Engine } from './engines/types.js';

export interface EngineResult {
  engine: string;
  description: string;
  /** Best of the timed runs. */
  decodeTokensPerSecond: number;
  prefillTokensPerSecond: number;
  /** Every timed run, for judging noise. */
  runs: Array<{ decodeTokensPerSecond: number; prefillTokensPerSecond: number }>;
  /** Greedy output of the first timed run. */
  tokens: number[];
  /** False when the timed runs did not all produce the same tokens (greedy decoding should). */
  deterministic: boolean;
}

export async function benchmarkEngine(engine: Engine, modelPath: string, promptIds: number[], nTokens: number, timedRuns: number): Promise<EngineResult> {
  await engine.load(modelPath);
  try {
    await engine.decode(promptIds, nTokens); // warm-up: JIT, caches, lazy allocations
    const runs = [];
    for (let i = 0; i < timedRuns; i++) runs.push(await engine.decode(promptIds, nTokens));
    const tokens = runs[0].tokens;
    return {
      engine: engine.name,
      description: engine.description,
      decodeTokensPerSecond: Math.max(...runs.map((r) => r.decodeTokensPerSecond)),
      prefillTokensPerSecond: Math.max(...runs.map((r) => r.prefillTokensPerSecond)),
      runs: runs.map(({ decodeTokensPerSecond, prefillTokensPerSecond }) => ({ decodeTokensPerSecond, prefillTokensPerSecond })),
      tokens,
      deterministic: runs.every((r) => r.tokens.length === tokens.length && r.tokens.every((t, i) => t === tokens[i])),
    };
  } finally {
    await engine.dispose();
  }
}

/** How many leading tokens two greedy outputs share. */
export function agreeingPrefix(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
