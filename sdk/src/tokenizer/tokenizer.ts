import { InvalidArgumentError } from '../errors.js';
import { Detokenizer } from './detokenize.js';
import type { FragmentEncoder } from './fragment.js';
import { partitionSpecial } from './partition.js';
import type { DecodeOptions, EncodeOptions, Tokenizer } from './types.js';
import type { Vocab } from './vocab.js';

/** What llama.cpp's llama_vocab::tokenize does around the model-specific fragment encoder. */
export class VocabTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bos?: number;
  readonly eos?: number;
  readonly eot?: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  private readonly detokenizer: Detokenizer;

  constructor(
    readonly kind: 'llama' | 'gpt2',
    private readonly vocab: Vocab,
    private readonly encodeFragment: FragmentEncoder,
  ) {
    this.vocabSize = vocab.texts.length;
    this.bos = vocab.bos;
    this.eos = vocab.eos;
    this.eot = vocab.eot;
    this.addBos = vocab.addBos;
    this.addEos = vocab.addEos;
    this.detokenizer = new Detokenizer(vocab, kind);
  }

  encode(text: string, { addSpecial = true, parseSpecial = false }: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new InvalidArgumentError(`encode() needs a string, got ${typeof text}.`);
    const out: number[] = [];
    if (addSpecial && this.addBos) out.push(this.bos!);
    // Lone surrogates become U+FFFD, as they do on the way to UTF-8 for llama.cpp.
    const wellFormed = text.replace(/\p{Cs}/gu, '\uFFFD');
    let afterSpecial = true;
    for (const fragment of partitionSpecial(wellFormed, this.vocab, parseSpecial)) {
      if (typeof fragment === 'number') out.push(fragment);
      else this.encodeFragment(fragment, afterSpecial, out);
      afterSpecial = typeof fragment === 'number';
    }
    if (addSpecial && this.addEos) out.push(this.eos!);
    return out;
  }

  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string {
    return this.detokenizer.decode(ids, opts);
  }

  tokenToBytes(id: number, { unparseSpecial = false }: Pick<DecodeOptions, 'unparseSpecial'> = {}): Uint8Array {
    return this.detokenizer.piece(id, unparseSpecial);
  }

  tokenText(id: number): string {
    this.detokenizer.piece(id, false); // validates the id
    return this.vocab.texts[id]!;
  }

  isEog(id: number): boolean {
    return this.vocab.eog.has(id);
  }
}
