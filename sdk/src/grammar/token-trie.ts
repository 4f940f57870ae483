/**
 * The vocabulary as a byte trie in depth-first order, so that a mask walks each shared prefix once.
 * Node 0 is the root (no byte); the subtree of node i is i .. end[i]-1 and its children are i+1, end[i+1], ….
 * Tokens with no bytes (control tokens) are not in the trie: only end-of-generation tokens are ever allowed
 * of those, and only when the grammar is complete.
 */
import type { Tokenizer } from '../tokenizer/types.js';

/** What the constraint needs of a tokenizer. */
export type ConstraintVocab = Pick<Tokenizer, 'vocabSize' | 'tokenToBytes' | 'isEog'>;

export interface TokenTrie {
  readonly vocabSize: number;
  readonly byte: Uint8Array;
  readonly end: Int32Array;
  readonly depth: Uint16Array;
  /** Tokens ending at node i: tokens[tokenStart[i] .. tokenStart[i + 1]). */
  readonly tokenStart: Int32Array;
  readonly tokens: Int32Array;
  /** Token id's bytes are tokenBytes[tokenOffset[id] .. tokenOffset[id + 1]) (none for control tokens). */
  readonly tokenBytes: Uint8Array;
  readonly tokenOffset: Int32Array;
  /** End-of-generation token ids. */
  readonly eog: Int32Array;
  /**
   * How many bytes the deepest token below node i goes past it, when every byte below i is plain text (printable
   * ASCII other than '"' and '\\'); -1 otherwise. Lets a walk accept such a subtree whole (see Matcher).
   */
  readonly plainDepth: Int16Array;
}

/** Printable ASCII except the quote and backslash: text that stays text inside most grammars' strings. */
export function isPlainByte(b: number): boolean {
  return b >= 0x20 && b <= 0x7e && b !== 0x22 && b !== 0x5c;
}

const tries = new WeakMap<object, TokenTrie>();

/** Built once per tokenizer object and shared by every constraint on it. */
export function tokenTrie(vocab: ConstraintVocab): TokenTrie {
  let trie = tries.get(vocab);
  if (!trie) {
    trie = buildTrie(vocab);
    tries.set(vocab, trie);
  }
  return trie;
}

function buildTrie(vocab: ConstraintVocab): TokenTrie {
  const n = vocab.vocabSize;
  const eog: number[] = [];
  const ids: number[] = [];
  const keys: string[] = [];
  for (let id = 0; id < n; id++) {
    const bytes = vocab.tokenToBytes(id);
    keys.push(String.fromCharCode.apply(null, bytes as unknown as number[]));
    if (vocab.isEog(id)) eog.push(id);
    else if (bytes.length > 0) ids.push(id);
  }
  // One char per byte: the engine's string order is byte order.
  ids.sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : a - b));

  // Sorted order is depth-first order: each token adds the nodes past its common prefix with the previous one.
  const byte: number[] = [0];
  const depth: number[] = [0];
  const tokenNode = new Int32Array(ids.length);
  const path = new Int32Array(65536); // path[d] = node at depth d of the previous token
  let prev = '';
  ids.forEach((id, k) => {
    const key = keys[id]!;
    let common = 0;
    while (common < prev.length && common < key.length && prev.charCodeAt(common) === key.charCodeAt(common)) common++;
    for (let d = common; d < key.length; d++) {
      path[d + 1] = byte.length;
      byte.push(key.charCodeAt(d));
      depth.push(d + 1);
    }
    tokenNode[k] = path[key.length]!;
    prev = key;
  });
  const count = byte.length;
  // end[i]: the first node after i whose depth is not deeper than i's.
  const end = new Int32Array(count);
  const open: number[] = [];
  for (let i = 0; i < count; i++) {
    while (open.length && depth[open[open.length - 1]!]! >= depth[i]!) end[open.pop()!] = i;
    open.push(i);
  }
  for (const i of open) end[i] = count;
  const plainDepth = new Int16Array(count);
  for (let i = count - 1; i > 0; i--) {
    let deepest = 0;
    for (let c = i + 1; c < end[i]! && deepest >= 0; c = end[c]!) {
      deepest = isPlainByte(byte[c]!) && plainDepth[c]! >= 0 ? Math.max(deepest, Math.min(plainDepth[c]! + 1, 0x7fff)) : -1;
    }
    plainDepth[i] = deepest;
  }
  // Tokens are already in node order (ids sorted like the nodes).
  const tokenStart = new Int32Array(count + 1);
  for (const node of tokenNode) tokenStart[node + 1]!++;
  for (let i = 0; i < count; i++) tokenStart[i + 1] += tokenStart[i]!;
  // Flat, not one array per token: 151k small arrays would weigh ~15 MB in a 128 MB isolate.
  const tokenOffset = new Int32Array(n + 1);
  for (let id = 0; id < n; id++) tokenOffset[id + 1] = tokenOffset[id]! + keys[id]!.length;
  const tokenBytes = new Uint8Array(tokenOffset[n]!);
  for (let id = 0; id < n; id++) for (let k = 0; k < keys[id]!.length; k++) tokenBytes[tokenOffset[id]! + k] = keys[id]!.charCodeAt(k);
  return {
    vocabSize: n,
    byte: Uint8Array.from(byte),
    end,
    depth: Uint16Array.from(depth),
    tokenStart,
    tokens: Int32Array.from(ids),
    tokenBytes,
    tokenOffset,
    plainDepth,
    eog: Int32Array.from(eog),
  };
}
