/** The decode loop: prefill, pick the first token, run a decode mode, stream text, stop, report stats. */
import { InvalidArgumentError } from './errors.js';
import { Context } from './decode/context.js';
import { recycledTokens, plainTokens, type DecodeCounters } from './decode/modes.js';
import { checkDrafts, checkMaxTokens } from './decode/options.js';
import { outputFor } from './decode/readback.js';
import { Sampler } from './sampler.js';
import { StopMatcher } from './stop.js';
import { StreamingDecoder } from './tokenizer/stream.js';
import type { FinishReason, GeneratedToken, GenerateOptions, GenerationStats } from './types.js';

export { Context };

// A long synchronous decode would starve the event loop (abort signals, other streams, socket writes):
// hand control back every few tokens. Counted in tokens because Workers' clock stands still while
// JavaScript computes. setImmediate where it exists (Node), else a zero timeout.
const YIELD_EVERY_TOKENS = 4;
const macrotask: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise((resolve) => setImmediate(resolve))
    : () => new Promise((resolve) => setTimeout(resolve, 0));

/** Generates from `promptIds`, yielding tokens; `report` gets the stats when it ends, however it ends. */
export async function* decode(
  context: Context,
  promptIds: number[],
  options: GenerateOptions,
  report: (stats: GenerationStats) => void,
): AsyncGenerator<GeneratedToken> {
  const maxTokens = checkMaxTokens(options.maxTokens);
  const mode = options.decode?.mode ?? 'off';
  const drafts = checkDrafts(mode, options.decode?.draftLength);
  if (mode !== 'off' && !context.hasHead) {
    throw new InvalidArgumentError(`decode mode '${mode}' needs a recycle head; load one with the \`recycle\` option`);
  }
  const sampler = new Sampler(options);
  const stop = new StopMatcher(options.stop ?? []);
  const decoder = new StreamingDecoder(context.tokenizer);
  const history = [...promptIds];
  const counters: DecodeCounters = { fullPasses: 0, proposed: 0, accepted: 0, draftingStopped: false };

  const adaptive = (mode === 'exact' || mode === 'chain') && options.decode?.adaptive !== false;
  const cost = adaptive && !options.signal?.aborted ? await context.draftCost(drafts, outputFor(context.llama, sampler)) : undefined;

  const t0 = now();
  // A caller that gave up while waiting for its turn gets no prefill.
  const aborted = options.signal?.aborted ?? false;
  const first = aborted ? -1 : sampler.sample((await context.prefill(promptIds))[0]!, history);
  const t1 = now();
  const tokens =
    mode === 'off'
      ? plainTokens(context, first, sampler, history, counters)
      : recycledTokens(context, first, sampler, history, counters, mode, drafts, cost);
  let generated = 0;
  let sinceYield = 0;
  let finish: FinishReason = 'abort';
  // Each token is yielded once the next is known, so text held back at the end (a stop-sequence
  // prefix that never completed, a split character) still reaches the caller with the last token.
  let previous: GeneratedToken | undefined;
  let failed = false;
  try {
    finish = 'length';
    while (generated < maxTokens) {
      if (aborted || options.signal?.aborted) {
        finish = 'abort';
        break;
      }
      const next = await tokens.next();
      if (next.done) break;
      const id = next.value;
      if (context.tokenizer.isEog(id)) {
        finish = 'stop';
        break;
      }
      generated++;
      history.push(id);
      const { text, stopped } = stop.push(decoder.push(id));
      if (previous) {
        // A caller that stops iterating here ends the generation as an abort.
        finish = 'abort';
        yield previous;
        finish = 'length';
      }
      previous = { id, text };
      if (stopped) {
        finish = 'stop';
        break;
      }
      if (++sinceYield === YIELD_EVERY_TOKENS) {
        sinceYield = 0;
        await macrotask();
      }
    }
    await tokens.return(undefined);
    if (previous) {
      if (!stop.stopped) previous.text += stop.flush(decoder.flush());
      const reason = finish;
      finish = 'abort';
      yield previous;
      finish = reason;
    }
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    const t2 = now();
    if (!failed) report({
      promptTokens: promptIds.length,
      generatedTokens: generated,
      prefillMs: t1 - t0,
      decodeMs: t2 - t1,
      prefillTokensPerSecond: rate(promptIds.length, t1 - t0),
      decodeTokensPerSecond: rate(Math.max(0, generated - 1), t2 - t1),
      finishReason: finish,
      decodeMode: mode,
      fullPasses: counters.fullPasses,
      proposed: counters.proposed,
      recycled: counters.accepted,
      acceptanceRate: mode !== 'fast' && counters.proposed > 0 ? counters.accepted / counters.proposed : undefined,
      tokensPerPass: counters.fullPasses > 0 ? Math.max(0, generated - 1) / counters.fullPasses : undefined,
      draftingStopped: counters.draftingStopped || undefined,
    });
  }
}

function rate(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : 0;
}

function now(): number {
  return performance.now();
}
