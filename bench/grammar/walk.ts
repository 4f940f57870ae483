/** Shared by the grammar tests and bench: a seeded random walk over allowed tokens, and small hand-made vocabularies. */
import { Random } from '../../sdk/src/sampler.js';
import type { ConstraintState } from '../../sdk/src/grammar/constraint.js';
import type { ConstraintVocab } from '../../sdk/src/grammar/token-trie.js';

export function maskHas(mask: Uint32Array, id: number): boolean {
  return ((mask[id >>> 5]! >>> (id & 31)) & 1) === 1;
}

export function maskIds(mask: Uint32Array): number[] {
  const ids: number[] = [];
  for (let w = 0; w < mask.length; w++) for (let x = mask[w]!; x !== 0; x &= x - 1) ids.push((w << 5) | (31 - Math.clz32(x & -x)));
  return ids;
}

/** The k-th set bit (uniform pick among allowed tokens without listing them). */
function nthId(mask: Uint32Array, k: number): number {
  for (let w = 0; w < mask.length; w++) {
    let x = mask[w]!;
    let n = popcount(x);
    if (k >= n) {
      k -= n;
      continue;
    }
    for (; ; x &= x - 1) if (k-- === 0) return (w << 5) | (31 - Math.clz32(x & -x));
  }
  throw new Error('k past the mask');
}

function popcount(x: number): number {
  let n = 0;
  for (; x !== 0; x &= x - 1) n++;
  return n;
}

export interface Walk {
  ids: number[];
  bytes: Uint8Array;
  /** Whether it ended with end-of-generation (always, unless the grammar got stuck). */
  ended: boolean;
  /** Each visited state, before its token. */
  states: ConstraintState[];
}

/**
 * Picks uniformly among allowed tokens for `freeSteps` tokens, then only among closing tokens, until
 * end-of-generation; `onStep` sees each state and the bytes so far.
 */
export function randomWalk(
  start: ConstraintState,
  vocab: ConstraintVocab,
  seed: number,
  freeSteps: number,
  onStep?: (state: ConstraintState, bytes: Uint8Array) => void,
): Walk {
  const random = new Random(seed);
  const ids: number[] = [];
  const states: ConstraintState[] = [];
  const chunks: number[] = [];
  let state = start;
  for (let step = 0; step < freeSteps + 10_000; step++) {
    onStep?.(state, Uint8Array.from(chunks));
    states.push(state);
    const closing = step >= freeSteps;
    const mask = closing ? state.closingMask() : state.mask();
    const count = closing ? maskIds(mask).length : state.allowedCount();
    if (count === 0) return { ids, bytes: Uint8Array.from(chunks), ended: false, states };
    const id = nthId(mask, Math.floor(random.next() * count));
    const next = state.advance(id);
    if (!next) throw new Error(`advance(${id}) refused a token its mask allowed`);
    ids.push(id);
    if (vocab.isEog(id)) return { ids, bytes: Uint8Array.from(chunks), ended: true, states };
    chunks.push(...vocab.tokenToBytes(id));
    state = next;
  }
  throw new Error('the closing walk did not end');
}

/** A vocabulary from byte strings (as latin1 text, one char per byte); the last token is EOS. */
export function byteVocab(pieces: string[]): ConstraintVocab {
  const bytes = [...pieces.map((p) => Uint8Array.from(p, (c) => c.charCodeAt(0))), new Uint8Array(0)];
  return {
    vocabSize: bytes.length,
    tokenToBytes: (id) => bytes[id]!,
    isEog: (id) => id === bytes.length - 1,
  };
}

/** UTF-8 text as one latin1 char per byte, for byteVocab. */
export function utf8Bytes(text: string): string {
  return String.fromCharCode(...new TextEncoder().encode(text));
}
