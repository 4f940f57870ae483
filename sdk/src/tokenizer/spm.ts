/**
 * SentencePiece-style tokenization as llama.cpp's llm_tokenizer_spm: the whole fragment (spaces as "▁")
 * starts as single characters, and the adjacent pair whose concatenation is the highest-scoring token is merged
 * first (ties: leftmost). Characters that end up in no token fall back to byte tokens <0xXX>.
 */
import { UnsupportedError } from '../errors.js';
import type { FragmentEncoder } from './fragment.js';
import { mergeSymbols } from './merge.js';
import type { Vocab, VocabDefaults } from './vocab.js';

/** llama.cpp's defaults for tokenizer.ggml.model = "llama". */
export const SPM_DEFAULTS: VocabDefaults = { bos: 1, eos: 2, unk: 0, addBos: true, addEos: false, addSpacePrefix: true, cleanSpaces: false };

const utf8 = new TextEncoder();

export function spmEncoder(vocab: Vocab): FragmentEncoder {
  const byteTokens = byteTokenTable(vocab);

  return (fragment, afterSpecial, out) => {
    const text = (vocab.addSpacePrefix && afterSpecial ? ' ' + fragment : fragment).replaceAll(' ', '▁');
    // Symbols are code points, kept as a linked list of [start, length) spans that grow as they merge.
    const starts: number[] = [];
    const lengths: number[] = [];
    for (let i = 0; i < text.length; i += lengths[lengths.length - 1]!) {
      starts.push(i);
      lengths.push(text.codePointAt(i)! > 0xffff ? 2 : 1);
    }
    const next = mergeSymbols(lengths, (left, right) => {
      const length = lengths[left]! + lengths[right]!;
      if (length > vocab.maxTextLength) return undefined;
      const id = vocab.ids.get(text.slice(starts[left]!, starts[left]! + length));
      return id === undefined ? undefined : vocab.scores[id]!;
    });

    // Every merged symbol is a token; only single characters can be missing from the vocabulary.
    // (llama.cpp's rev_merge re-segmentation never applies to a single character, so it is left out.)
    for (let i = 0; i !== -1 && starts.length > 0; i = next[i]!) {
      const piece = text.slice(starts[i]!, starts[i]! + lengths[i]!);
      const id = vocab.ids.get(piece);
      if (id !== undefined) out.push(id);
      else for (const byte of utf8.encode(piece)) out.push(byteToken(byteTokens, byte));
    }
  };
}

/** <0xXX> tokens, else the raw one-byte string as llama.cpp's byte_to_token, else <unk>. */
function byteTokenTable(vocab: Vocab): (number | undefined)[] {
  return Array.from({ length: 256 }, (_, byte) => {
    const hex = `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
    return vocab.ids.get(hex) ?? (byte < 0x80 ? vocab.ids.get(String.fromCharCode(byte)) : undefined) ?? vocab.unk;
  });
}

function byteToken(table: (number | undefined)[], byte: number): number {
  const id = table[byte];
  if (id === undefined) {
    throw new UnsupportedError(`The vocabulary has no byte token <0x${byte.toString(16).toUpperCase().padStart(2, '0')}> and no <unk>, so this text cannot be tokenized. Use a model whose vocabulary has byte fallback tokens.`);
  }
  return id;
}
