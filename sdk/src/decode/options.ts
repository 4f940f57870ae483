/**
 * Option checks: everything a caller can get wrong about a generation is found here, when `generate()`/`chat()` is
 * called, before any token is produced.
 */
import { DECODE_MODES, isDecodeMode } from '../contract/modes.js';
import { ContextFullError, InvalidArgumentError } from '../errors.js';
import { resolveSampling } from '../sampler.js';
import { StopMatcher } from '../stop.js';
import type { DecodeMode, GenerateOptions } from '../types.js';

/** A generation's checked settings. */
export interface GenerationPlan {
  maxTokens: number;
  mode: DecodeMode;
  /** Drafts per full pass (1 but for `chain`). */
  drafts: number;
  /** Draft the text a `responseFormat` dictates (jump-forward). */
  jumpForward: boolean;
  /** Alternatives reported per token, or undefined for no log-probabilities. */
  logprobs?: number;
}

/** What a generation needs to know about the model it runs on. */
export interface ModelLimits {
  vocabSize: number;
  contextLength: number;
  hasHead: boolean;
}

/** Checks a generation of `ids` on a model with these limits; throws the error a caller should see. */
export function planGeneration(ids: number[], options: GenerateOptions, model: ModelLimits): GenerationPlan {
  const plan = checkGenerateOptions(options);
  if (plan.mode !== 'off' && !model.hasHead) {
    throw new InvalidArgumentError(`decode mode '${plan.mode}' needs a recycle head; load one with the \`recycle\` option`);
  }
  checkPromptIds(ids, model.vocabSize, model.contextLength);
  return plan;
}

/** Checks the options alone (those that do not depend on the model or the prompt). */
export function checkGenerateOptions(options: GenerateOptions): GenerationPlan {
  resolveSampling(options);
  new StopMatcher(options.stop ?? []);
  const mode = options.decode?.mode ?? 'off';
  const drafts = checkDrafts(mode, options.decode?.draftLength);
  const jumpForward = options.decode?.jumpForward ?? true;
  if (typeof jumpForward !== 'boolean') throw new InvalidArgumentError(`decode.jumpForward must be true or false, got ${String(jumpForward)}`);
  return { maxTokens: checkMaxTokens(options.maxTokens), mode: mode as DecodeMode, drafts, jumpForward, logprobs: checkLogprobs(options.logprobs, mode) };
}

/** Token ids within the vocabulary, at least one, and no more than the context holds. */
export function checkPromptIds(ids: number[], vocabSize: number, contextLength: number): void {
  if (!Array.isArray(ids)) throw new InvalidArgumentError('the prompt must be a string or an array of token ids');
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new InvalidArgumentError(`token id ${id} is out of range: the vocabulary has ${vocabSize} tokens`);
    }
  }
  if (ids.length === 0) throw new InvalidArgumentError('the prompt is empty: give at least one token');
  if (ids.length > contextLength) throw new ContextFullError(ids.length, contextLength);
}

export function checkMaxTokens(maxTokens: number | undefined): number {
  const value = maxTokens ?? 256;
  if (!Number.isInteger(value) || value < 0) throw new InvalidArgumentError(`maxTokens must be a non-negative integer, got ${String(maxTokens)}`);
  return value;
}

const MAX_DRAFTS = 8;

function checkDrafts(mode: string, draftLength: number | undefined): number {
  if (!isDecodeMode(mode)) {
    throw new InvalidArgumentError(`decode mode must be ${DECODE_MODES.map((m) => `'${m}'`).join(', ')}, got '${String(mode)}'`);
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

/** Most alternatives a token reports, as OpenAI's top_logprobs. */
const MAX_LOGPROBS = 20;

function checkLogprobs(logprobs: number | undefined, mode: string): number | undefined {
  if (logprobs === undefined) return undefined;
  if (!Number.isInteger(logprobs) || logprobs < 0 || logprobs > MAX_LOGPROBS) {
    throw new InvalidArgumentError(`logprobs must be an integer from 0 to ${MAX_LOGPROBS} (alternatives per token), got ${String(logprobs)}`);
  }
  if (mode === 'fast') {
    throw new InvalidArgumentError(
      "logprobs are not available in decode mode 'fast': its recycled tokens are the head's guesses, which the full model never scores; use 'exact' (the same tokens as 'off', with their logprobs) or 'off'",
    );
  }
  return logprobs;
}
