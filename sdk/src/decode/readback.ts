/**
 * The readback policy: what a base pass reads back for a generation (the argmax alone, the top-k candidates, or whole
 * logits rows), and the pick, the distribution and the log-probabilities at a row of what it read.
 */
import type { Backend, ForwardOutput } from '../backend.js';
import { topIds, type Candidates, type Sampler } from '../sampler.js';
import type { TokenLogprob, TokenSource } from '../types.js';

/**
 * A decoded token: its id, where it came from, and its log-probabilities where the generation reports them. Every
 * token a pass picks is made here (`Readback.step`, `Readback.first`): the place for a per-step constraint on picks.
 */
export interface Step {
  id: number;
  source: TokenSource;
  logprobs?: Logprobs;
}

/** What the passes of one generation read back, and what it takes from a row of the last base pass. */
export class Readback {
  /** What a base pass keeps of its logits rows. */
  readonly output: ForwardOutput;
  /** Top-k candidates a pass reads back, or 0 for whole rows. */
  private readonly topK: number;

  /**
   * `logprobs`: alternatives to report per token, or undefined for no log-probabilities (which need whole rows).
   * `constrained`: picks are masked by a grammar, which the row's argmax or top k may all fall outside of, so passes
   * read back whole rows.
   */
  constructor(
    private readonly llama: Backend,
    readonly sampler: Sampler,
    private readonly logprobs?: number,
    constrained = false,
  ) {
    const wholeRows = logprobs !== undefined || constrained;
    this.topK = !wholeRows && llama.candidates ? sampler.candidatesNeeded(llama.maxTopK ?? 0, llama.config.vocabSize) : 0;
    // The argmax alone where that is all sampling needs, the top k where a backend reads them back for less than
    // the whole row, else logits.
    this.output = wholeRows ? 'logits' : sampler.argmaxOnly ? 'argmax' : this.topK > 0 ? { topK: this.topK } : 'logits';
  }

  /** Whether drafting runs as the backend's one-call draftAndCheck: where the check reads back picks or candidates. */
  get fusesDrafting(): boolean {
    return fusesDrafting(this.llama, this.output);
  }

  /** The token the last full pass picks at `row`; `allowed`: the grammar's mask there (see Sampler.sample). */
  step(row: number, history: number[], allowed?: Uint32Array): Step {
    const id = this.pick(row, history, allowed);
    return { id, source: 'pass', logprobs: this.logprobsAt(row, id) };
  }

  /** The first token, from the prefill's copy of the prompt's last row. */
  first(logits: Float32Array, history: number[], allowed?: Uint32Array): Step {
    const id = this.sampler.sample(logits, history, allowed);
    return { id, source: 'pass', logprobs: this.logprobs === undefined ? undefined : logprobsOf(logits, id, this.logprobs) };
  }

  /** Row `row`'s pick; `history` is the sequence so far, for the repetition penalty. */
  pick(row: number, history: number[], allowed?: Uint32Array): number {
    const { llama, sampler } = this;
    if (allowed) return sampler.sample(llama.logits(row), history, allowed);
    if (this.output === 'argmax') return llama.argmax(row);
    return this.topK > 0 ? sampler.sampleCandidates(llama.candidates!(row)) : sampler.sample(llama.logits(row), history);
  }

  /** Row `row`'s sampling distribution (see pick). */
  distribution(row: number, history: number[], allowed?: Uint32Array): Candidates {
    const { llama, sampler } = this;
    if (allowed) return sampler.distribution(llama.logits(row), history, allowed);
    return this.topK > 0 ? sampler.candidateDistribution(llama.candidates!(row)) : sampler.distribution(llama.logits(row), history);
  }

  /** Token `id`'s log-probability at row `row` and the most likely alternatives, if this generation reports them. */
  logprobsAt(row: number, id: number): Logprobs | undefined {
    return this.logprobs === undefined ? undefined : logprobsOf(this.llama.logits(row), id, this.logprobs);
  }
}

export interface Logprobs {
  logprob: number;
  topLogprobs: TokenLogprob[];
}

/**
 * Log-probabilities from a row of raw logits: the model's own distribution at temperature 1, before any sampling
 * filter (as OpenAI reports them), with the `top` most likely tokens, most likely first.
 */
export function logprobsOf(logits: Float32Array, id: number, top: number): Logprobs {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const norm = max + Math.log(sum);
  const topLogprobs = top > 0 ? topIds(logits, top).map((t) => ({ id: t, logprob: logits[t]! - norm })) : [];
  return { logprob: logits[id]! - norm, topLogprobs };
}

/** Whether drafting runs as the backend's one-call draftAndCheck: where the check reads back picks or candidates. */
export function fusesDrafting(llama: Backend, output: ForwardOutput): output is Exclude<ForwardOutput, 'logits'> {
  return llama.draftAndCheck !== undefined && output !== 'logits';
}
