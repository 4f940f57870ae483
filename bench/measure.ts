/** Runs one engine on one model: load, a short warm-up, then the best of a few timed decode and prefill runs. */
import { perSecond, type DecodeResult, type Engine } from './engines/types.js';

/** A rate by both clocks: the wall clock (what a user waits) and this process's CPU time (steadier on a shared machine). */
export interface Rate {
  tokensPerSecond: number;
  cpuTokensPerSecond: number;
}

export interface EngineResult {
  engine: string;
  description: string;
  /** Single-token passes (forward + greedy pick) per second after a short prompt; best run. */
  decode: Rate;
  /** Tokens per second of a long prompt up to the first generated token; best run. */
  prefill: Rate;
  /** Every timed run, for judging noise (fewer than asked where the time budget ran out). */
  runs: Array<{ decode: Rate; prefill: Rate }>;
  /** Greedy output of the first timed decode run. */
  tokens: number[];
  /** False when the timed decode runs did not all produce the same tokens (greedy decoding should). */
  deterministic: boolean;
}

export interface Workload {
  /** Prompt of the decode runs (a few dozen tokens). */
  decodePrompt: number[];
  /** Tokens generated per decode run. */
  decodeTokens: number;
  /** Prompt of the prefill runs (e.g. 512 tokens); each generates one token. */
  prefillPrompt: number[];
  timedRuns: number;
  /** Once this many seconds of timed runs have passed, no further run starts (slow engines on large models get fewer). */
  budgetSeconds: number;
}

const decodeRate = (r: DecodeResult): Rate => ({ tokensPerSecond: perSecond(r.tokens.length - 1, r.decodeMs), cpuTokensPerSecond: perSecond(r.tokens.length - 1, r.decodeCpuMs) });
const prefillRate = (r: DecodeResult, n: number): Rate => ({ tokensPerSecond: perSecond(n, r.prefillMs), cpuTokensPerSecond: perSecond(n, r.prefillCpuMs) });
const best = (rates: Rate[]): Rate => ({
  tokensPerSecond: Math.max(...rates.map((r) => r.tokensPerSecond)),
  cpuTokensPerSecond: Math.max(...rates.map((r) => r.cpuTokensPerSecond)),
});

export async function benchmarkEngine(engine: Engine, modelPath: string, work: Workload): Promise<EngineResult> {
  await engine.load(modelPath);
  try {
    // Warm-up: JIT tiers, caches, lazy allocations; short, because a large model's passes are long.
    await engine.decode(work.decodePrompt.slice(0, 16), 8);
    const runs = [];
    const outputs: number[][] = [];
    const start = performance.now();
    for (let i = 0; i < work.timedRuns && (i === 0 || performance.now() - start < work.budgetSeconds * 1000); i++) {
      const decoded = await engine.decode(work.decodePrompt, work.decodeTokens);
      const prefilled = await engine.decode(work.prefillPrompt, 1);
      outputs.push(decoded.tokens);
      runs.push({ decode: decodeRate(decoded), prefill: prefillRate(prefilled, work.prefillPrompt.length) });
    }
    const tokens = outputs[0]!;
    return {
      engine: engine.name,
      description: engine.description,
      decode: best(runs.map((r) => r.decode)),
      prefill: best(runs.map((r) => r.prefill)),
      runs,
      tokens,
      deterministic: outputs.every((o) => o.length === tokens.length && o.every((t, i) => t === tokens[i])),
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
