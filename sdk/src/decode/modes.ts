/**
 * The decode modes: `off` (one full pass per token) and the recycled ones, `fast`, `exact` and `chain`, as
 * generators of tokens from the first picked one on, each with where it came from.
 */
import { draw, type Candidates, type Sampler } from '../sampler.js';
import type { Context, DraftCost } from './context.js';
import type { Readback, Step } from './readback.js';

/** What a decode mode did, for the stats. */
export interface DecodeCounters {
  fullPasses: number;
  proposed: number;
  accepted: number;
  /** Verified drafting stopped because it cost more than it saved on this backend. */
  draftingStopped: boolean;
}

/** Rounds of drafting seen before judging whether it pays. */
const JUDGE_AFTER_ROUNDS = 4;

/**
 * Whether verified drafting has produced tokens more cheaply than plain passes would: per round it yields
 * `tokensPerRound` tokens for one pass of k + 1 tokens and about (tokensPerRound + k - 1) head rows.
 */
export function draftingPays(cost: DraftCost, drafts: number, tokensPerRound: number): boolean {
  return tokensPerRound >= cost.pass + cost.head * (tokensPerRound + drafts - 1);
}

/** Plain decoding from the first picked token: one full pass per token. */
export async function* plainTokens(context: Context, first: Step, readback: Readback, history: number[], counters: DecodeCounters): AsyncGenerator<Step> {
  let step = first;
  for (;;) {
    yield step;
    if (context.cached.length >= context.capacity) return;
    await context.step(step.id, readback);
    counters.fullPasses++;
    step = readback.step(0, history);
  }
}

/**
 * Recycled decoding. Each round: the token x at position P is known (and yielded); the head, given the
 * base hidden state at P-1 and x, drafts `drafts` tokens (feeding its own hidden state back after the
 * first); one batched full pass runs x and the drafts. `fast` keeps the drafts unchecked (the paper);
 * `exact`/`chain` keep the longest prefix the full pass agrees with, plus the full pass's own token
 * where it disagrees, so the output is what plain decoding gives (with sampling: in distribution).
 */
export async function* recycledTokens(
  context: Context,
  first: Step,
  readback: Readback,
  history: number[],
  counters: DecodeCounters,
  mode: 'fast' | 'exact' | 'chain',
  drafts: number,
  cost: DraftCost | undefined,
): AsyncGenerator<Step> {
  const { llama } = context;
  const { sampler } = readback;
  let x = first;
  // Head rows still to run: base hidden rows from `fromRow` paired with these tokens (the last is x). The first
  // pairs the prompt's last hidden state (h_{P-1}) with the first generated token.
  let fromRow = context.cached.length - 1 - context.lastPassStart;
  let headTokens = [x.id];
  // What drafting yielded so far on this context, earlier generations included.
  const record = context.draftRecord(drafts);
  for (;;) {
    yield x;
    if (cost && record.rounds >= JUDGE_AFTER_ROUNDS && !draftingPays(cost, drafts, record.tokens / record.rounds)) {
      // Plain passes from here on: the output is the same, and they are cheaper on this backend.
      counters.draftingStopped = true;
      if (context.cached.length >= context.capacity) return;
      await context.step(x.id, readback);
      counters.fullPasses++;
      yield* plainTokens(context, readback.step(0, history), readback, history, counters);
      return;
    }
    const pos = context.cached.length;
    // x and its drafts run as one batch, which a backend may cap (WebGPU: 8 tokens).
    const room = Math.min(drafts, context.capacity - pos - 1, llama.config.maxBatch - 1);
    if (room < 0) return;
    let guesses: number[];
    if (readback.fusesDrafting && room > 0 && headTokens.length <= llama.recycleMaxBatch) {
      // One round trip for the head rows, the drafts and their check (which reads back picks or candidates alone).
      const output = readback.output as Exclude<typeof readback.output, 'logits'>;
      guesses = await llama.draftAndCheck!(fromRow, headTokens, pos, room, mode === 'fast' ? room : 0, output);
      context.headCached = pos;
    } else {
      guesses = await draftTokens(context, fromRow, headTokens, pos, room);
      await llama.forward([x.id, ...guesses], pos, mode === 'fast' ? guesses.length : 0, readback.output);
    }
    counters.fullPasses++;
    context.cached.push(x.id);
    counters.proposed += guesses.length;

    if (mode === 'fast') {
      for (const g of guesses) {
        counters.accepted++;
        context.cached.push(g);
        yield { id: g, source: 'recycled' };
      }
      x = readback.step(0, history);
      headTokens = [...guesses, x.id];
      fromRow = 0;
      continue;
    }
    let kept = 0;
    let next: Step | undefined;
    while (!next) {
      if (kept === guesses.length) next = readback.step(kept, history);
      else {
        const verdict = sampler.greedy ? readback.pick(kept, history) : verify(sampler, readback.distribution(kept, history), guesses[kept]!);
        const logprobs = readback.logprobsAt(kept, verdict);
        if (verdict === guesses[kept]) {
          counters.accepted++;
          context.cached.push(verdict);
          kept++;
          yield { id: verdict, source: 'recycled', logprobs };
        } else next = { id: verdict, source: 'pass', logprobs };
      }
    }
    x = next;
    headTokens = [...guesses.slice(0, kept), x.id];
    fromRow = 0;
    record.rounds++;
    record.tokens += kept + 1;
  }
}

/** Runs the head rows for `headTokens` (ending at `pos`), then drafts `count` tokens by argmax, chaining the head. */
async function draftTokens(context: Context, fromRow: number, headTokens: number[], pos: number, count: number): Promise<number[]> {
  const { llama } = context;
  let headRow = await context.recycleRows(fromRow, headTokens, pos - headTokens.length + 1);
  const guesses: number[] = [];
  while (guesses.length < count) {
    if (guesses.length > 0) {
      await llama.recycleForward('head', headRow, [guesses[guesses.length - 1]!], pos + guesses.length, 0, 'argmax');
      headRow = 0;
    }
    guesses.push(llama.recycleArgmax(0));
  }
  return guesses;
}

/**
 * The full pass's token at a drafted position when sampling (greedy takes its pick): the draft (a point mass)
 * is kept with probability p(draft), else a token is drawn from p without the draft, which together
 * draw exactly from p (speculative sampling with a deterministic draft).
 */
function verify(sampler: Sampler, p: Candidates, draft: number): number {
  const at = p.ids.indexOf(draft);
  const pDraft = at === -1 ? 0 : p.probs[at]!;
  if (sampler.random.next() < pDraft) return draft;
  const rest = { ids: p.ids.filter((_, i) => i !== at), probs: p.probs.filter((_, i) => i !== at) };
  const mass = 1 - pDraft;
  return draw({ ids: rest.ids, probs: rest.probs.map((q) => q / mass) }, sampler.random.next());
}
