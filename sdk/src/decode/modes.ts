/**
 * The decode modes: `off` (one full pass per token) and the recycled ones, `fast`, `exact` and `chain`, as one
 * generator of tokens from the first picked one on, each with where it came from. Under a grammar every pick is
 * masked, and with jump-forward the text the grammar dictates is drafted and verified like the head's drafts.
 */
import { argmax, draw, type Candidates, type Sampler } from '../sampler.js';
import type { DecodeMode, TokenSource } from '../types.js';
import type { Context, DraftCost } from './context.js';
import { MAX_GRAMMAR_DRAFTS, type OutputGrammar } from './grammar.js';
import type { Readback, Step } from './readback.js';

/** What a decode mode did, for the stats. */
export interface DecodeCounters {
  fullPasses: number;
  /** Drafts the recycle head proposed, and those kept. */
  proposed: number;
  accepted: number;
  /** Drafts the grammar dictated (jump-forward), and those kept. */
  grammarDrafted: number;
  grammarKept: number;
  /** Verified drafting stopped because it cost more than it saved on this backend. */
  draftingStopped: boolean;
  /** The grammar completed the output: nothing but the end could follow, so no pass was asked for it. */
  completed: boolean;
}

/** How a generation decodes after its first token. */
export interface DecodePlan {
  mode: DecodeMode;
  /** Head drafts per pass (1 but for `chain`). */
  drafts: number;
  /** What drafting costs on this backend, where exact/chain judge whether it pays (adaptive). */
  cost?: DraftCost;
  grammar?: OutputGrammar;
  /** Draft the text the grammar dictates (needs `grammar`). */
  jumpForward: boolean;
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

/**
 * Decoding from the first picked token. Each round: the token x at position P is known (and yielded); drafts for
 * the positions after it come from the grammar (the text it dictates, with jump-forward) or else from the recycle
 * head (given the base hidden state at P-1 and x; it feeds its own hidden state back after the first); one batched
 * full pass runs x and the drafts. `fast` keeps the drafts unchecked (the paper); the others keep the longest prefix
 * the full pass agrees with, plus the full pass's own token where it disagrees, so the output is what plain decoding
 * gives (with sampling: in distribution). Without drafts a round is a plain 1-token pass.
 */
export async function* decodeTokens(context: Context, first: Step, readback: Readback, history: number[], counters: DecodeCounters, plan: DecodePlan): AsyncGenerator<Step> {
  const { llama } = context;
  const { sampler } = readback;
  const { mode, grammar } = plan;
  // The grammar whose dictated text is drafted, with jump-forward.
  const dictating = plan.jumpForward ? grammar : undefined;
  let head = mode !== 'off';
  let x = first;
  // Head rows still to run: base hidden rows from `fromRow` paired with these tokens (the last is x). The first
  // pairs the prompt's last hidden state (h_{P-1}) with the first generated token.
  let fromRow = context.cached.length - 1 - context.lastPassStart;
  let headTokens = [x.id];
  // What head drafting yielded so far on this context, earlier generations included.
  const record = context.draftRecord(plan.drafts);
  for (;;) {
    grammar?.accept(x.id);
    yield x;
    if (grammar?.complete) {
      counters.completed = true;
      return;
    }
    if (head && plan.cost && record.rounds >= JUDGE_AFTER_ROUNDS && !draftingPays(plan.cost, plan.drafts, record.tokens / record.rounds)) {
      // Plain passes from here on: the output is the same, and they are cheaper on this backend.
      counters.draftingStopped = true;
      head = false;
    }
    const pos = context.cached.length;
    // x and its drafts run as one batch, which a backend may cap (WebGPU: 8 tokens).
    const room = Math.min(context.capacity - pos - 1, llama.config.maxBatch - 1);
    if (room < 0) return;
    const forced = dictating?.drafts(Math.min(room, MAX_GRAMMAR_DRAFTS)) ?? [];
    const headDrafting = head && forced.length === 0;
    let guesses = forced;
    if (headDrafting && readback.fusesDrafting && room > 0 && headTokens.length <= llama.recycleMaxBatch) {
      // One round trip for the head rows, the drafts and their check (which reads back picks or candidates alone).
      const output = readback.output as Exclude<typeof readback.output, 'logits'>;
      const count = Math.min(plan.drafts, room);
      guesses = await llama.draftAndCheck!(fromRow, headTokens, pos, count, mode === 'fast' ? count : 0, output);
      context.headCached = pos;
    } else {
      if (headDrafting) guesses = await draftTokens(context, fromRow, headTokens, pos, Math.min(plan.drafts, room), grammar);
      // The head's cache keeps up with the output while grammar drafts take the round.
      else if (head) await context.recycleRows(fromRow, headTokens, pos - headTokens.length + 1, true);
      await llama.forward([x.id, ...guesses], pos, mode === 'fast' ? guesses.length : 0, readback.output);
    }
    counters.fullPasses++;
    context.cached.push(x.id);
    const source: TokenSource = headDrafting ? 'recycled' : 'grammar';
    if (headDrafting) counters.proposed += guesses.length;
    else counters.grammarDrafted += guesses.length;

    let kept = 0;
    let next: Step | undefined;
    while (!next) {
      if (kept === guesses.length) {
        // `fast` kept logits for the last row alone.
        next = readback.step(mode === 'fast' ? 0 : kept, history, grammar?.next());
        break;
      }
      // `fast` keeps every draft unchecked; the others keep a draft where the full pass picks it too.
      let verdict = guesses[kept]!;
      let logprobs;
      if (mode !== 'fast') {
        const allowed = grammar?.next();
        verdict = sampler.greedy ? readback.pick(kept, history, allowed) : verify(sampler, readback.distribution(kept, history, allowed), verdict);
        logprobs = readback.logprobsAt(kept, verdict);
        if (verdict !== guesses[kept]) {
          next = { id: verdict, source: 'pass', logprobs };
          break;
        }
      }
      if (headDrafting) counters.accepted++;
      else counters.grammarKept++;
      context.cached.push(verdict);
      kept++;
      grammar?.accept(verdict);
      yield { id: verdict, source, logprobs };
      if (grammar?.complete) {
        counters.completed = true;
        return;
      }
    }
    x = next;
    headTokens = [...guesses.slice(0, kept), x.id];
    fromRow = 0;
    if (headDrafting && mode !== 'fast') {
      record.rounds++;
      record.tokens += kept + 1;
    }
  }
}

/**
 * Runs the head rows for `headTokens` (ending at `pos`), then drafts `count` tokens by argmax, chaining the head;
 * under a grammar, the best token it allows at each draft's position (which needs the head's whole logits row).
 */
async function draftTokens(context: Context, fromRow: number, headTokens: number[], pos: number, count: number, grammar: OutputGrammar | undefined): Promise<number[]> {
  const { llama } = context;
  const output = grammar ? 'logits' : 'argmax';
  let headRow = await context.recycleRows(fromRow, headTokens, pos - headTokens.length + 1, false, output);
  const guesses: number[] = [];
  let state = grammar?.state;
  while (guesses.length < count) {
    if (guesses.length > 0) {
      await llama.recycleForward('head', headRow, [guesses[guesses.length - 1]!], pos + guesses.length, 0, output);
      headRow = 0;
    }
    if (!state) {
      guesses.push(llama.recycleArgmax(0));
      continue;
    }
    const guess = argmax(llama.recycleLogits(0), grammar!.allowed(state, grammar!.decided + guesses.length));
    guesses.push(guess);
    state = state.advance(guess)!;
    // Past a complete output only the end can follow, which the decode loop takes without a pass.
    if (state.isComplete()) break;
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
