export interface EncodeOptions {
  /** Add BOS/EOS as the model's metadata says (default true). */
  addSpecial?: boolean;
  /** Turn control-token text such as "<s>" into its token (default false: it is plain text). User-defined tokens are always matched, as in llama.cpp. */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Drop a leading BOS and a trailing EOS when the model adds them (default false). */
  removeSpecial?: boolean;
  /** Render control tokens as their text (default false: they render as nothing). */
  unparseSpecial?: boolean;
}

/** Text ⇄ token ids with the same results as llama.cpp's tokenizer for the same GGUF metadata. */
export interface Tokenizer {
  /** `tokenizer.ggml.model`: 'llama' is SentencePiece (SPM), 'gpt2' is byte-level BPE. */
  readonly kind: 'llama' | 'gpt2';
  readonly vocabSize: number;
  readonly bos?: number;
  readonly eos?: number;
  readonly eot?: number;
  /** Whether encode() with addSpecial prepends BOS / appends EOS. */
  readonly addBos: boolean;
  readonly addEos: boolean;
  encode(text: string, opts?: EncodeOptions): number[];
  /** Like llama.cpp's llama_detokenize; invalid UTF-8 becomes U+FFFD as TextDecoder does. */
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
  /** The raw bytes one token contributes to the output (a piece of a UTF-8 character for byte tokens); control tokens give no bytes unless `unparseSpecial`. */
  tokenToBytes(id: number, opts?: Pick<DecodeOptions, 'unparseSpecial'>): Uint8Array;
  /** The token's string as stored in the vocabulary (e.g. "▁the", "Ġthe", "<0x0A>"). */
  tokenText(id: number): string;
  /** End of generation: EOS, EOT and the other tokens llama.cpp treats as ending a turn. */
  isEog(id: number): boolean;
}
