import { UnsupportedError } from '../errors.js';
import type { GGUFMetadata } from '../gguf/types.js';
import { BPE_DEFAULTS, bpeEncoder } from './bpe.js';
import { preTokenizer } from './pretokenizer.js';
import { SPM_DEFAULTS, spmEncoder } from './spm.js';
import { VocabTokenizer } from './tokenizer.js';
import type { Tokenizer } from './types.js';
import { readVocab } from './vocab.js';

export type { DecodeOptions, EncodeOptions, Tokenizer } from './types.js';
export { StreamingDecoder } from './stream.js';

/** The tokenizer a GGUF describes: `tokenizer.ggml.model` "llama" (SentencePiece) or "gpt2" (byte-level BPE). */
export function createTokenizer(metadata: GGUFMetadata): Tokenizer {
  const model = metadata['tokenizer.ggml.model'];
  if (model === 'llama') {
    const vocab = readVocab(metadata, SPM_DEFAULTS);
    return new VocabTokenizer('llama', vocab, spmEncoder(vocab));
  }
  if (model === 'gpt2') {
    const pre = metadata['tokenizer.ggml.pre'];
    const preTok = preTokenizer(typeof pre === 'string' && pre !== '' ? pre : undefined);
    const vocab = readVocab(metadata, { ...BPE_DEFAULTS, addBos: preTok.addBos, cleanSpaces: preTok.cleanSpaces });
    return new VocabTokenizer('gpt2', vocab, bpeEncoder(vocab, metadata, preTok));
  }
  throw new UnsupportedError(
    `tokenizer.ggml.model ${JSON.stringify(model ?? null)} is not supported; this engine runs "llama" (SentencePiece) and "gpt2" (BPE) vocabularies.`,
  );
}
