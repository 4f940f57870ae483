/**
 * A generation's output grammar (`responseFormat`): the state after the output so far, the tokens a pick at each
 * output position may take, and the tokens the grammar dictates next (drafts for jump-forward).
 */
import { RecycleGPTError } from '../errors.js';
import type { Constraint, ConstraintState } from '../grammar/index.js';

/**
 * How far from the budget's end (in bytes beyond the shortest completion) picks start being checked against it: a
 * single token that opens more required text than this earlier on (an optional key whose value is a large object)
 * can still leave the output cut.
 */
const CLOSING_WINDOW = 64;

/** Grammar drafts per pass at most: forced text is rarely longer (a key with its quotes and colon is 2–4 tokens). */
export const MAX_GRAMMAR_DRAFTS = 8;

export class OutputGrammar {
  /** The state after every token decided so far. */
  state: ConstraintState;
  /** Tokens decided so far: the output position of the next pick. */
  decided = 0;

  constructor(
    constraint: Constraint,
    private readonly maxTokens: number,
  ) {
    this.state = constraint.start();
  }

  /**
   * The tokens a pick at output position `index` from `state` may take: those the format allows, and near the end of
   * the budget only those after which the output can still complete in the tokens left (each token and the end take
   * one, a token at least a byte); where it cannot any more, those on a shortest completion. The same at a position
   * whatever the decode mode, so drafts are checked against what plain decoding picks.
   */
  allowed(state: ConstraintState, index: number): Uint32Array {
    const left = this.maxTokens - index;
    // Within reach of the end (past it, a token would have to open more than CLOSING_WINDOW bytes to need closing),
    // and only where some allowed token would leave more than the tokens left can close.
    if (left <= state.bytesToClose() + 1 + CLOSING_WINDOW && state.farthestAfter() > left - 2) {
      const within = state.maskWithin(left - 2);
      if (within) return within;
      const closing = state.closingMask();
      if (closing.some((word) => word !== 0)) return closing;
    }
    if (state.allowedCount() === 0) {
      throw new RecycleGPTError('INVALID_ARGUMENT', "no token of this model's vocabulary continues the output the way responseFormat requires; check that the format's characters can be written with this vocabulary");
    }
    return state.mask();
  }

  /** The mask for the next pick. */
  next(): Uint32Array {
    return this.allowed(this.state, this.decided);
  }

  /** Records the decided token `id` (which the mask allowed). */
  accept(id: number): void {
    const next = this.state.advance(id);
    if (!next) throw new RecycleGPTError('ENGINE', `token ${id} was decided although the grammar does not allow it here`);
    this.state = next;
    this.decided++;
  }

  /** Whether nothing but the end can follow: the generation is over without asking the model. */
  get complete(): boolean {
    return this.state.isComplete();
  }

  /** The tokens the grammar dictates after the output so far (at most `room`), for a pass to verify. */
  drafts(room: number): number[] {
    if (room <= 0) return [];
    const forced = this.state.forcedTokens();
    return forced.length > room ? forced.slice(0, room) : forced;
  }
}
