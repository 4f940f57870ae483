/** Option checks, run before a generation starts so that a bad option fails before anything streams. */
import { InvalidArgumentError } from '../errors.js';
import { resolveSampling } from '../sampler.js';
import { StopMatcher } from '../stop.js';
import type { GenerateOptions } from '../types.js';

/** Checks a generation's options up front, so a bad one fails before anything streams. */
export function checkGenerateOptions(options: GenerateOptions): void {
  resolveSampling(options);
  checkMaxTokens(options.maxTokens);
  checkDrafts(options.decode?.mode ?? 'off', options.decode?.draftLength);
  new StopMatcher(options.stop ?? []);
}

export function checkMaxTokens(maxTokens: number | undefined): number {
  const value = maxTokens ?? 256;
  if (!Number.isInteger(value) || value < 0) throw new InvalidArgumentError(`maxTokens must be a non-negative integer, got ${String(maxTokens)}`);
  return value;
}

const MAX_DRAFTS = 8;

export function checkDrafts(mode: string, draftLength: number | undefined): number {
  if (!['off', 'fast', 'exact', 'chain'].includes(mode)) {
    throw new InvalidArgumentError(`decode mode must be 'off', 'fast', 'exact' or 'chain', got '${mode}'`);
  }
  if (mode !== 'chain') {
    if (draftLength !== undefined && draftLength !== 1) throw new InvalidArgumentError(`draftLength applies to decode mode 'chain' only`);
    return 1;
  }
  const k = draftLength ?? 3;
  if (!Number.isInteger(k) || k < 2 || k > MAX_DRAFTS) {
    throw new InvalidArgumentError(`draftLength must be an integer from 2 to ${MAX_DRAFTS}, got ${String(draftLength)}`);
  }
  return k;
}
