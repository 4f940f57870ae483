/**
 * Byte-level BPE as llama.cpp's llm_tokenizer_bpe: the pre-tokenizer splits the text into words, each
 * word becomes GPT-2 byte characters, and the adjacent pair with the lowest merge rank is merged first
 * (ties: leftmost) until no listed merge applies.
 */
import { GGUFError } from '../errors.js';
import type { GGUFMetadata } from '../gguf/types.js';
import { toByteChars } from './byte-chars.js';
import type { FragmentEncoder } from './fragment.js';
import { mergeSymbols } from './merge.js';
import type { PreTokenizer } from './pretokenizer.js';
import type { Vocab, VocabDefaults } from './vocab.js';

/** llama.cpp's defaults for tokenizer.ggml.model = "gpt2" (BOS = EOS = 11 unless the GGUF says otherwise). */
export const BPE_DEFAULTS: VocabDefaults = { bos: 11, eos: 11, addBos: false, addEos: false, addSpacePrefix: false, cleanSpaces: true };

const utf8 = new TextEncoder();
/** Words repeat a lot in prompts; past this many distinct ones the cache starts over rather than grow without bound. */
const MAX_CACHED_WORDS = 20_000;

export function bpeEncoder(vocab: Vocab, metadata: GGUFMetadata, pre: PreTokenizer): FragmentEncoder {
  const ranks = readMergeRanks(metadata);
  const cache = new Map<string, number[]>();

  const encodeWord = (word: string): number[] => {
    const chars = toByteChars(word);
    const whole = pre.ignoreMerges ? vocab.ids.get(chars) : undefined;
    if (whole !== undefined) return [whole];

    // Symbols are [start, length) spans of `chars` (one UTF-16 unit per byte) in a linked list.
    const n = chars.length;
    const lengths = new Array<number>(n).fill(1);
    // Lower merge ranks go first; a symbol's index is its start in `chars`.
    const next = mergeSymbols(lengths, (left, right) => {
      const rank = ranks.get(`${chars.slice(left, left + lengths[left]!)} ${chars.slice(right, right + lengths[right]!)}`);
      return rank === undefined ? undefined : -rank;
    });

    const ids: number[] = [];
    for (let i = 0; i !== -1 && n > 0; i = next[i]!) {
      const piece = chars.slice(i, i + lengths[i]!);
      const id = vocab.ids.get(piece);
      if (id !== undefined) ids.push(id);
      else pushSingleByteTokens(vocab, piece, ids);
    }
    return ids;
  };

  return (text, _afterSpecial, out) => {
    for (const word of pre.split(text)) {
      let ids = cache.get(word);
      if (!ids) {
        if (cache.size >= MAX_CACHED_WORDS) cache.clear();
        ids = encodeWord(word);
        cache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
  };
}

/**
 * A merged piece missing from the vocabulary (possible when merges and tokens disagree): llama.cpp looks up
 * each byte of the piece's own UTF-8 text as a one-byte token, so only plain ASCII characters survive.
 */
function pushSingleByteTokens(vocab: Vocab, piece: string, out: number[]): void {
  for (const byte of utf8.encode(piece)) {
    const id = byte < 0x80 ? vocab.ids.get(String.fromCharCode(byte)) : undefined;
    if (id !== undefined) out.push(id);
  }
}

/**
 * "left right" → rank (its index in tokenizer.ggml.merges; the first listing wins). Byte characters are never a
 * plain space, so joining a pair with one space is unambiguous.
 */
function readMergeRanks(metadata: GGUFMetadata): Map<string, number> {
  const merges = metadata['tokenizer.ggml.merges'];
  if (!Array.isArray(merges) || merges.some((m) => typeof m !== 'string')) {
    throw new GGUFError('tokenizer.ggml.merges is missing or not an array of strings; a gpt2 (BPE) vocabulary needs its merges.');
  }
  const ranks = new Map<string, number>();
  (merges as string[]).forEach((merge, rank) => {
    // As llama.cpp: split at the first space after the first character; an entry without one merges nothing.
    if (merge.indexOf(' ', 1) > 0 && !ranks.has(merge)) ranks.set(merge, rank);
  });
  return ranks;
}
