import { Heap } from './heap.js';

interface Bigram {
  left: number;
  right: number;
  priority: number;
  /** Length of the merged span when queued; a different current length means a side has merged since. */
  length: number;
}

const bigramFirst = (a: Bigram, b: Bigram) => a.priority > b.priority || (a.priority === b.priority && a.left < b.left);

/**
 * The merge loop both llama.cpp tokenizers share: symbols are spans kept as a linked list, and the adjacent
 * pair with the highest `priority(left, right)` merges first (ties: leftmost) until no pair has one
 * (`undefined`). `lengths` holds each symbol's span length and is updated in place (0 = merged away);
 * returns `next`, the list's links, starting from symbol 0 and ending at -1.
 */
export function mergeSymbols(lengths: number[], priority: (left: number, right: number) => number | undefined): number[] {
  const n = lengths.length;
  const prev = Array.from({ length: n }, (_, i) => i - 1);
  const next = Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
  const queue = new Heap<Bigram>(bigramFirst);
  const tryAdd = (left: number, right: number) => {
    if (left < 0 || right < 0) return;
    const p = priority(left, right);
    if (p !== undefined) queue.push({ left, right, priority: p, length: lengths[left]! + lengths[right]! });
  };
  for (let i = 1; i < n; i++) tryAdd(i - 1, i);

  for (let bigram = queue.pop(); bigram; bigram = queue.pop()) {
    const { left, right } = bigram;
    if (lengths[left] === 0 || lengths[right] === 0 || lengths[left]! + lengths[right]! !== bigram.length) continue;
    lengths[left] = bigram.length;
    lengths[right] = 0;
    next[left] = next[right]!;
    if (next[right]! >= 0) prev[next[right]!] = left;
    tryAdd(prev[left]!, left);
    tryAdd(left, next[left]!);
  }
  return next;
}
