import type { DecodeOptions, Tokenizer } from './types.js';

/**
 * Turns generated tokens into text as they arrive: each push returns only whole UTF-8 characters, holding
 * back the start of a character split across byte tokens until its last byte comes. Pieces are joined as
 * llama.cpp's token_to_piece gives them (no leading-space removal or space clean-up, which apply to a whole text).
 */
export class StreamingDecoder {
  // ignoreBOM keeps a U+FEFF the model generates instead of swallowing it as a byte-order mark.
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly options: Pick<DecodeOptions, 'unparseSpecial'> = {},
  ) {}

  push(id: number): string {
    return this.decoder.decode(this.tokenizer.tokenToBytes(id, this.options), { stream: true });
  }

  /** The held-back bytes of an unfinished character, as U+FFFD; the decoder is ready for a new stream after. */
  flush(): string {
    return this.decoder.decode();
  }
}
