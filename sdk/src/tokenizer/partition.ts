import { Attr, type Vocab } from './vocab.js';

/** Raw text still to be tokenized, or a token id already cut out of the text. */
export type Fragment = string | number;

/**
 * llama.cpp's tokenizer_st_partition: cut special-token text out of the input, longest token first.
 * Control and unknown tokens are cut only when `parseSpecial`; user-defined tokens always are.
 */
export function partitionSpecial(text: string, vocab: Vocab, parseSpecial: boolean): Fragment[] {
  let fragments: Fragment[] = text === '' ? [] : [text];
  for (const id of vocab.specialOrder) {
    if (!parseSpecial && vocab.attrs[id]! & (Attr.CONTROL | Attr.UNKNOWN)) continue;
    const special = vocab.texts[id]!;
    fragments = fragments.flatMap((fragment) => (typeof fragment === 'string' && fragment.includes(special) ? cut(fragment, special, id) : [fragment]));
  }
  return fragments;
}

/** Leftmost, non-overlapping matches, as llama.cpp's repeated find from the end of the last match. */
function cut(text: string, special: string, id: number): Fragment[] {
  const out: Fragment[] = [];
  text.split(special).forEach((piece, i) => {
    if (i > 0) out.push(id);
    if (piece !== '') out.push(piece);
  });
  return out;
}
