/**
 * The readback policy: what a base pass reads back for a sampler (the argmax alone, the top-k candidates, or whole
 * logits rows), and the pick or the distribution at a row of what it read.
 */
import type { Backend, ForwardOutput } from '../backend.js';
import type { Candidates, Sampler } from '../sampler.js';

/**
 * What a base pass reads back for this sampler: the argmax alone where that is all it needs, the top k where a
 * backend reads them back for less than the whole row, else logits.
 */
export function outputFor(llama: Backend, sampler: Sampler): ForwardOutput {
  if (sampler.argmaxOnly) return 'argmax';
  const k = candidatesFor(llama, sampler);
  return k > 0 ? { topK: k } : 'logits';
}

/** The top-k candidates a base pass reads back for this sampler, or 0 for whole rows. */
function candidatesFor(llama: Backend, sampler: Sampler): number {
  return llama.candidates ? sampler.candidatesNeeded(llama.maxTopK ?? 0, llama.config.vocabSize) : 0;
}

/** Whether drafting runs as the backend's one-call draftAndCheck: where the check reads back picks or candidates. */
export function fusesDrafting(llama: Backend, output: ForwardOutput): output is Exclude<ForwardOutput, 'logits'> {
  return llama.draftAndCheck !== undefined && output !== 'logits';
}

/** Row `row`'s pick from the last base pass, which read back `outputFor(llama, sampler)`. */
export function pick(llama: Backend, row: number, sampler: Sampler, history: number[]): number {
  if (sampler.argmaxOnly) return llama.argmax(row);
  return candidatesFor(llama, sampler) > 0 ? sampler.sampleCandidates(llama.candidates!(row)) : sampler.sample(llama.logits(row), history);
}

/** Row `row`'s sampling distribution from the last base pass (see pick). */
export function distributionAt(llama: Backend, row: number, sampler: Sampler, history: number[]): Candidates {
  return candidatesFor(llama, sampler) > 0 ? sampler.candidateDistribution(llama.candidates!(row)) : sampler.distribution(llama.logits(row), history);
}
