/** Token → bytes and ids → text as llama.cpp's token_to_piece and llama_detokenize. */
import { InvalidArgumentError } from '../errors.js';
import { CHAR_TO_BYTE } from './byte-chars.js';
import type { DecodeOptions } from './types.js';
import { Attr, type Vocab } from './vocab.js';

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);
const HIDDEN_UNLESS_UNPARSED = Attr.CONTROL | Attr.UNKNOWN;

export class Detokenizer {
  /**
   * Rendered pieces, kept in one growing buffer: a grammar's vocabulary walk renders every token, and 151k separate
   * arrays would hold ~30 MB of a Worker's 128 MB; this holds ~10 bytes a token. `start[id]` is -1 until rendered.
   */
  private bytes = new Uint8Array(1 << 12);
  private used = 0;
  private readonly start: Int32Array;
  private readonly end: Int32Array;

  constructor(
    private readonly vocab: Vocab,
    private readonly kind: 'llama' | 'gpt2',
  ) {
    this.start = new Int32Array(vocab.texts.length).fill(-1);
    this.end = new Int32Array(vocab.texts.length);
  }

  /** The bytes of one token (a view: do not modify it); control and unknown tokens only when `unparseSpecial`. */
  piece(id: number, unparseSpecial: boolean): Uint8Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.texts.length) {
      throw new InvalidArgumentError(`Token id ${id} is not in the vocabulary (valid ids are 0..${this.vocab.texts.length - 1}).`);
    }
    if (!unparseSpecial && this.vocab.attrs[id]! & HIDDEN_UNLESS_UNPARSED) return EMPTY;
    if (this.start[id] === -1) this.keep(id, this.render(id));
    return this.bytes.subarray(this.start[id]!, this.end[id]!);
  }

  private keep(id: number, piece: Uint8Array): void {
    if (this.used + piece.length > this.bytes.length) {
      // Views handed out earlier keep the old buffer, whose bytes stay as they were.
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.used + piece.length));
      grown.set(this.bytes.subarray(0, this.used));
      this.bytes = grown;
    }
    this.bytes.set(piece, this.used);
    this.start[id] = this.used;
    this.used += piece.length;
    this.end[id] = this.used;
  }

  decode(ids: ArrayLike<number>, { removeSpecial = false, unparseSpecial = false }: DecodeOptions = {}): string {
    const { vocab } = this;
    let start = 0;
    let end = ids.length;
    // SPM text starts with the space the encoder added; llama.cpp drops it unless a removed BOS came first.
    let removeSpace = vocab.addSpacePrefix;
    if (removeSpecial && vocab.addBos && end > 0 && ids[0] === vocab.bos) {
      removeSpace = false;
      start = 1;
    }
    if (removeSpecial && vocab.addEos && end > start && ids[end - 1] === vocab.eos) end--;

    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = start; i < end; i++) {
      let piece = this.piece(ids[i]!, unparseSpecial);
      if (removeSpace && piece[0] === 0x20) piece = piece.subarray(1);
      removeSpace = false;
      parts.push(piece);
      total += piece.length;
    }
    const bytes = new Uint8Array(total);
    parts.reduce((at, part) => (bytes.set(part, at), at + part.length), 0);
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(vocab.cleanSpaces ? cleanSpaces(bytes) : bytes);
  }

  private render(id: number): Uint8Array {
    const attr = this.vocab.attrs[id]!;
    const text = this.vocab.texts[id]!;
    if (attr & (Attr.CONTROL | Attr.UNKNOWN | Attr.USER_DEFINED)) return utf8.encode(text);
    if (attr & Attr.NORMAL) return this.kind === 'llama' ? utf8.encode(text.replaceAll('▁', ' ')) : fromByteChars(text);
    // "<0xAB>" → 0xAB (strtol in llama.cpp: junk reads as 0).
    if (attr & Attr.BYTE) return Uint8Array.of(parseInt(text.slice(3, 5), 16) || 0);
    return EMPTY; // unused and undefined tokens render as nothing
  }
}

/** GPT-2 byte characters → bytes; a character outside the mapping becomes llama.cpp's "[UNK_BYTE_0x…]" marker. */
function fromByteChars(text: string): Uint8Array {
  const bytes: number[] = [];
  for (const char of text) {
    const byte = CHAR_TO_BYTE.get(char);
    if (byte !== undefined) {
      bytes.push(byte);
      continue;
    }
    const hex = Array.from(utf8.encode(char), (b) => b.toString(16).padStart(2, '0')).join('');
    bytes.push(...utf8.encode(`[UNK_BYTE_0x${hex}${text}]`));
  }
  return Uint8Array.from(bytes);
}

const SPACE = 0x20;
const APOSTROPHE = 0x27;
const code = (char: string) => char.charCodeAt(0);
const [QUESTION, BANG, DOT, COMMA, S, M, R, V, E] = ['?', '!', '.', ',', 's', 'm', 'r', 'v', 'e'].map(code);

/**
 * llama.cpp's clean_up_tokenization_spaces, three in-place passes over the bytes: drop the space before
 * ? ! . , then turn " ' " into "'", then join " 's" " 'm" " 're" " 've" to the word before.
 * Replicated byte for byte, including pass two zeroing the byte after a removed space.
 */
function cleanSpaces(text: Uint8Array): Uint8Array {
  let total = text.length;
  let n = total ? 1 : 0;
  for (let i = 1; i < total; i++) {
    const x = text[i]!;
    if (text[i - 1] === SPACE && (x === QUESTION || x === BANG || x === DOT || x === COMMA)) n--;
    text[n++] = x;
  }

  total = n;
  n = total ? 1 : 0;
  for (let i = 1; i < total; i++) {
    const x = text[i]!;
    if (x === APOSTROPHE && i + 1 < total && text[i - 1] === SPACE && text[i + 1] === SPACE) {
      n--;
      text[++i] = 0;
    }
    text[n++] = x;
  }

  total = n;
  n = total ? 1 : 0;
  for (let i = 1; i < total; i++) {
    const x = text[i]!;
    if (text[i - 1] === SPACE && x === APOSTROPHE && i + 1 < total) {
      const x1 = text[i + 1];
      const x2 = i + 2 < total ? text[i + 2] : undefined;
      if (x1 === S || x1 === M || ((x1 === R || x1 === V) && x2 === E)) n--;
    }
    text[n++] = x;
  }
  return text.subarray(0, n);
}
