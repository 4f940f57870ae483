/** The decode loop: prefill, pick the first token, run a decode mode, stream text, stop, report stats. */
import { Context } from './decode/context.js';
import { OutputGrammar } from './decode/grammar.js';
import { decodeTokens, type DecodeCounters } from './decode/modes.js';
import { planGeneration, type GenerationPlan } from './decode/options.js';
import { Readback, type Step } from './decode/readback.js';
import { compileConstraint, type Constraint } from './grammar/index.js';
import { Sampler } from './sampler.js';
import { StopMatcher } from './stop.js';
import { StreamingDecoder } from './tokenizer/stream.js';
import type { Channel, FinishReason, GeneratedToken, GenerateOptions, GenerationStats } from './types.js';

export { Context };

/**
 * The tokens that open and close a reasoning block (`<think>`, `</think>`) in this vocabulary, for a generation whose
 * tokens are told apart by channel; `inside`: the prompt left a block open, so output starts as reasoning.
 */
export interface ReasoningMarkers {
  open: number;
  close: number;
  inside: boolean;
}

// A long synchronous decode would starve the event loop (abort signals, other streams, socket writes):
// hand control back every few tokens. Counted in tokens because Workers' clock stands still while
// JavaScript computes. setImmediate where it exists (Node), else a zero timeout.
const YIELD_EVERY_TOKENS = 4;
const macrotask: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise((resolve) => setImmediate(resolve))
    : () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * Generates from `promptIds`. Every error the caller can cause (options, token ids, a prompt longer than the context,
 * a decode mode without a head) is thrown here, by the call; the returned generator runs nothing until iterated.
 * It yields tokens; `report` gets the stats when it ends, however it ends. With `reasoning`, tokens carry a channel.
 */
export function decode(
  context: Context,
  promptIds: number[],
  options: GenerateOptions,
  report: (stats: GenerationStats) => void,
  reasoning?: ReasoningMarkers,
): AsyncGenerator<GeneratedToken> {
  const { vocabSize } = context.llama.config;
  const plan = planGeneration(promptIds, options, { vocabSize, contextLength: context.capacity, hasHead: context.hasHead });
  // Compiled here so that a schema it cannot enforce is refused by the call (the same format again is cached).
  const constraint = options.responseFormat === undefined ? null : compileConstraint(options.responseFormat, context.tokenizer);
  return run(context, [...promptIds], options, plan, constraint, report, reasoning);
}

async function* run(
  context: Context,
  promptIds: number[],
  options: GenerateOptions,
  plan: GenerationPlan,
  constraint: Constraint | null,
  report: (stats: GenerationStats) => void,
  reasoning: ReasoningMarkers | undefined,
): AsyncGenerator<GeneratedToken> {
  const { maxTokens, mode, drafts } = plan;
  const sampler = new Sampler(options);
  const grammar = constraint ? new OutputGrammar(constraint, maxTokens) : undefined;
  const readback = new Readback(context.llama, sampler, plan.logprobs, grammar !== undefined);
  const stop = new StopMatcher(options.stop ?? []);
  const decoder = new StreamingDecoder(context.tokenizer);
  const history = [...promptIds];
  const counters: DecodeCounters = { fullPasses: 0, proposed: 0, accepted: 0, grammarDrafted: 0, grammarKept: 0, draftingStopped: false, completed: false };

  // Verified drafting judges whether it pays: the head's in exact/chain, the grammar's (jump-forward) in every mode but fast.
  const judges = mode === 'exact' || mode === 'chain' || (grammar !== undefined && plan.jumpForward && mode === 'off');
  const adaptive = judges && options.decode?.adaptive !== false;
  const cost = adaptive && !options.signal?.aborted ? await context.draftCost(drafts, readback.output) : undefined;

  const t0 = now();
  // A caller that gave up while waiting for its turn gets no prefill.
  const aborted = options.signal?.aborted ?? false;
  const first: Step = aborted ? { id: -1, source: 'pass' } : readback.first((await context.prefill(promptIds))[0]!, history, grammar?.next());
  const reusedPromptTokens = aborted ? 0 : context.reusedPrompt;
  const t1 = now();
  const steps = decodeTokens(context, first, readback, history, counters, { mode, drafts, adaptive, cost, grammar, jumpForward: plan.jumpForward });
  const channels = reasoning && new Channels(reasoning);
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
      const next = await steps.next();
      if (next.done) {
        // The format's output is complete: the end is the only token that could follow.
        if (counters.completed) finish = 'stop';
        break;
      }
      const step = next.value;
      if (context.tokenizer.isEog(step.id)) {
        finish = 'stop';
        break;
      }
      generated++;
      history.push(step.id);
      let piece: string;
      let channel = channels?.current;
      if (channels?.isMarker(step.id)) {
        // A marker's own text is not output, and the text held back so far ends the section it belongs to.
        if (previous) previous.text += channels.trim(stop.flush(decoder.flush()));
        channel = channels.enter(step.id);
        piece = '';
      } else piece = decoder.push(step.id);
      const { text, stopped } = stop.push(piece);
      if (previous) {
        // A caller that stops iterating here ends the generation as an abort.
        finish = 'abort';
        yield previous;
        finish = 'length';
      }
      previous = token(step, channels ? channels.trim(text) : text, channel);
      if (stopped) {
        finish = 'stop';
        break;
      }
      if (++sinceYield === YIELD_EVERY_TOKENS) {
        sinceYield = 0;
        await macrotask();
      }
    }
    await steps.return(undefined);
    // Cut by maxTokens just as the format's output completed: it ended where it had to.
    if (finish === 'length' && grammar?.complete) finish = 'stop';
    if (previous) {
      if (!stop.stopped) {
        const rest = stop.flush(decoder.flush());
        previous.text += channels ? channels.trim(rest) : rest;
      }
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
    // Where the clock stands still while code runs (production Workers: it moves only at I/O), a phase that ran a
    // pass measures 0 ms; then no time is reported rather than a wrong one.
    const measured = (aborted || t1 > t0) && (counters.fullPasses === 0 || t2 > t1);
    const prefillMs = measured ? t1 - t0 : 0;
    const decodeMs = measured ? t2 - t1 : 0;
    if (!failed) report({
      promptTokens: promptIds.length,
      reusedPromptTokens,
      generatedTokens: generated,
      timing: measured ? 'measured' : 'unmeasured',
      prefillMs,
      decodeMs,
      prefillTokensPerSecond: rate(promptIds.length - reusedPromptTokens, prefillMs),
      decodeTokensPerSecond: rate(Math.max(0, generated - 1), decodeMs),
      finishReason: finish,
      decodeMode: mode,
      fullPasses: counters.fullPasses,
      proposed: counters.proposed,
      recycled: counters.accepted,
      acceptanceRate: mode !== 'fast' && counters.proposed > 0 ? counters.accepted / counters.proposed : undefined,
      tokensPerPass: counters.fullPasses > 0 ? Math.max(0, generated - 1) / counters.fullPasses : undefined,
      draftingStopped: counters.draftingStopped || undefined,
      ...(grammar && { grammarDrafted: counters.grammarDrafted, grammarKept: counters.grammarKept }),
    });
  }
}

function token(step: Step, text: string, channel: Channel | undefined): GeneratedToken {
  const out: GeneratedToken = { id: step.id, text, source: step.source };
  if (step.logprobs) {
    out.logprob = step.logprobs.logprob;
    out.topLogprobs = step.logprobs.topLogprobs;
  }
  if (channel) out.channel = channel;
  return out;
}

/**
 * Which channel the output is in, switched by the reasoning markers. The whitespace that opens a section (the
 * newline after `<think>`, the blank line after `</think>`) is layout, not text, and is left out.
 */
class Channels {
  current: Channel;
  private atSectionStart: boolean;

  constructor(private readonly markers: ReasoningMarkers) {
    this.current = markers.inside ? 'reasoning' : 'content';
    this.atSectionStart = markers.inside;
  }

  isMarker(id: number): boolean {
    return id === this.markers.open || id === this.markers.close;
  }

  /** Switches at a marker; returns the marker's own channel (both belong to the reasoning block). */
  enter(marker: number): Channel {
    this.current = marker === this.markers.open ? 'reasoning' : 'content';
    this.atSectionStart = true;
    return 'reasoning';
  }

  trim(text: string): string {
    if (!this.atSectionStart) return text;
    const trimmed = text.trimStart();
    if (trimmed) this.atSectionStart = false;
    return trimmed;
  }
}

function rate(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : 0;
}

function now(): number {
  return performance.now();
}
