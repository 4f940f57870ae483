/**
 * Encodes a text corpus with a base GGUF's own tokenizer (the SDK's, which tokenizes as llama.cpp does) into a
 * token file for `training.train head`: documents separated by a line holding only U+001E (what
 * `training.corpus` writes), each encoded as the model's tokenizer says (BOS where it adds one), ids as
 * little-endian uint16, or uint32 for vocabularies over 65536 tokens (training/tokenizer.py's token_dtype).
 * Reads only the GGUF's header, so a large model costs nothing to open.
 *
 *   npx tsx training/encode.ts --base model.gguf --input train.txt --out train.bin
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import '../sdk/src/node.js'; // the SDK's Node entry: model files by path
import { readGGUFHeader } from '../sdk/src/gguf/load.js';
import { createTokenizer } from '../sdk/src/tokenizer/index.js';

export const DOC_SEPARATOR = '\n\x1e\n';
const UINT16_VOCAB = 1 << 16;

/** The token file's bytes for `text` under the base's tokenizer, and how many tokens and documents it holds. */
export async function encodeCorpus(basePath: string, text: string): Promise<{ bytes: Uint8Array; tokens: number; documents: number; vocabSize: number }> {
  const tokenizer = createTokenizer((await readGGUFHeader(basePath)).metadata);
  const docs = text.split(DOC_SEPARATOR).filter((doc) => doc.length > 0);
  const ids = docs.flatMap((doc) => tokenizer.encode(doc));
  const array = tokenizer.vocabSize <= UINT16_VOCAB ? Uint16Array.from(ids) : Uint32Array.from(ids);
  return { bytes: new Uint8Array(array.buffer), tokens: ids.length, documents: docs.length, vocabSize: tokenizer.vocabSize };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { base: { type: 'string' }, input: { type: 'string' }, out: { type: 'string' } } });
  if (!values.base || !values.input || !values.out) {
    console.error('usage: npx tsx training/encode.ts --base model.gguf --input train.txt --out train.bin');
    process.exit(2);
  }
  const { bytes, tokens, documents, vocabSize } = await encodeCorpus(values.base, readFileSync(values.input, 'utf8'));
  writeFileSync(values.out, bytes);
  console.log(`wrote ${tokens} tokens of ${documents} documents to ${values.out} (${vocabSize <= UINT16_VOCAB ? 'uint16' : 'uint32'} ids, vocabulary ${vocabSize})`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error: Error) => {
    console.error(`error: ${error.message}`);
    process.exit(1);
  });
}
