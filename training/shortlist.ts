/**
 * Writes a recycle head's shortlist: the tokens it scores, most frequent first, as `recycle.shortlist` (u32 array) in a
 * copy of the head GGUF. The SDK then computes the head's logits for those rows of the output matrix only: a guess is
 * only ever checked by the full model, so a head that never guesses rare tokens loses little acceptance, and its
 * output matrix (most of a head row at 49k–151k vocabularies) costs size / vocabulary of the full one.
 *
 * Frequencies come from the head's training tokens (a token file from training/encode.ts, ids as the base's
 * tokenizer gives them), from a text corpus (encoded here as training/encode.ts does), or, with no corpus at hand,
 * from text the base itself samples. Tokens never counted follow, lowest id first, so the list always has `size` ids.
 *
 *   npx tsx training/shortlist.ts --base model.gguf --head head.gguf --tokens train.bin --out head-shortlist.gguf
 *   npx tsx training/shortlist.ts --base model.gguf --head head.gguf --sample 16384 --out head-shortlist.gguf
 *
 * `--size` defaults to an eighth of the vocabulary (at least 1024): at SmolLM2's 49k and Qwen's 151k vocabularies the
 * head then costs ~0.06 of a base pass (sdk/src/decode/cost-model.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import '../sdk/src/node.js'; // the SDK's Node entry: model files by path
import { parseGGUF } from '../sdk/src/gguf/parse.js';
import { readGGUFHeader } from '../sdk/src/gguf/load.js';
import { loadModel } from '../sdk/src/model.js';
import { SHORTLIST_KEY } from '../sdk/src/recycle.js';
import { createTokenizer } from '../sdk/src/tokenizer/index.js';
import { encodeCorpus } from './encode.js';

const UINT16_VOCAB = 1 << 16;

/** The default shortlist size for a vocabulary. */
export function defaultSize(vocabSize: number): number {
  return Math.min(vocabSize, Math.max(1024, Math.ceil(vocabSize / 8)));
}

/** The `size` most counted token ids, most counted first (ties and uncounted tokens: lowest id first). */
export function rankTokens(counts: ArrayLike<number>, size: number): number[] {
  const ids = Array.from({ length: counts.length }, (_, i) => i);
  ids.sort((a, b) => counts[b]! - counts[a]! || a - b);
  return ids.slice(0, size);
}

/** How often each id occurs in `ids`. */
export function countIds(ids: ArrayLike<number>, vocabSize: number): Float64Array {
  const counts = new Float64Array(vocabSize);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id >= vocabSize) throw new Error(`token id ${id} is past the base's vocabulary of ${vocabSize}: count tokens of this base`);
    counts[id]!++;
  }
  return counts;
}

/** The ids of a token file of training/encode.ts (uint16, uint32 past 65536 tokens). */
export function tokenFileIds(bytes: Uint8Array, vocabSize: number): ArrayLike<number> {
  const copy = bytes.slice(); // aligned
  return vocabSize <= UINT16_VOCAB ? new Uint16Array(copy.buffer, 0, copy.length >> 1) : new Uint32Array(copy.buffer, 0, copy.length >> 2);
}

/** Token counts of `tokens` tokens the base samples (temperature 1) from its BOS, in generations of 256. */
export async function countSampled(basePath: string, tokens: number): Promise<Float64Array> {
  const model = await loadModel(basePath, { sequences: 1 });
  const ids: number[] = [];
  try {
    for (let seed = 0; ids.length < tokens; seed++) {
      if (seed > tokens) throw new Error('the base ends its samples before writing anything: give a corpus instead');
      const out = await model.complete('', { maxTokens: Math.min(256, tokens - ids.length), temperature: 1, topK: 0, topP: 1, minP: 0, seed });
      ids.push(...out.tokens);
    }
  } finally {
    model.dispose();
  }
  return countIds(ids, model.info.vocabSize);
}

/**
 * A copy of the head GGUF with `recycle.shortlist` = ids added in front of its other keys, with a padding entry that
 * keeps the insertion a multiple of the file's alignment, so tensor infos and data keep their offsets.
 */
export function withShortlist(head: Uint8Array, ids: number[]): Uint8Array {
  const header = parseGGUF(head);
  if (header.metadata[SHORTLIST_KEY] !== undefined) throw new Error(`the head already has '${SHORTLIST_KEY}': start from the exported head`);
  const alignment = typeof header.metadata['general.alignment'] === 'number' ? header.metadata['general.alignment'] : 32;
  const values = new DataView(new ArrayBuffer(12 + 4 * ids.length));
  values.setUint32(0, GGUF_U32, true);
  values.setBigUint64(4, BigInt(ids.length), true);
  ids.forEach((id, i) => values.setUint32(12 + 4 * i, id, true));
  const list = entry(SHORTLIST_KEY, GGUF_ARRAY, new Uint8Array(values.buffer));
  const padding = (spaces: number) => {
    const text = new Uint8Array(8 + spaces).fill(0x20);
    new DataView(text.buffer).setBigUint64(0, BigInt(spaces), true);
    return entry(PADDING_KEY, GGUF_STRING, text);
  };
  const pad = padding((alignment - ((list.length + padding(0).length) % alignment)) % alignment);
  const fixed = 24; // magic, version, tensor count (u64), key count (u64)
  const out = new Uint8Array(head.length + list.length + pad.length);
  out.set(head.subarray(0, fixed));
  const view = new DataView(out.buffer);
  view.setBigUint64(16, view.getBigUint64(16, true) + 2n, true);
  out.set(list, fixed);
  out.set(pad, fixed + list.length);
  out.set(head.subarray(fixed), fixed + list.length + pad.length);
  return out;
}

const GGUF_U32 = 4;
const GGUF_STRING = 8;
const GGUF_ARRAY = 9;
const PADDING_KEY = 'recycle.shortlist_padding';

/** One metadata entry: key (u64 length, bytes), value type (u32), value. */
function entry(key: string, type: number, value: Uint8Array): Uint8Array {
  const name = new TextEncoder().encode(key);
  const bytes = new Uint8Array(12 + name.length + value.length);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(name.length), true);
  bytes.set(name, 8);
  view.setUint32(8 + name.length, type, true);
  bytes.set(value, 12 + name.length);
  return bytes;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      base: { type: 'string' },
      head: { type: 'string' },
      out: { type: 'string' },
      tokens: { type: 'string' },
      text: { type: 'string' },
      sample: { type: 'string' },
      size: { type: 'string' },
    },
  });
  const sources = [values.tokens, values.text, values.sample].filter((v) => v !== undefined).length;
  if (!values.base || !values.head || !values.out || sources !== 1) {
    throw new Error('usage: shortlist.ts --base model.gguf --head head.gguf --out out.gguf (--tokens train.bin | --text corpus.txt | --sample N) [--size K]');
  }
  const tokenizer = createTokenizer((await readGGUFHeader(values.base)).metadata);
  const vocabSize = tokenizer.vocabSize;
  const counts = values.tokens
    ? countIds(tokenFileIds(readFileSync(values.tokens), vocabSize), vocabSize)
    : values.text
      ? countIds(tokenFileIds((await encodeCorpus(values.base, readFileSync(values.text, 'utf8'))).bytes, vocabSize), vocabSize)
      : await countSampled(values.base, Number(values.sample));
  const size = values.size === undefined ? defaultSize(vocabSize) : Number(values.size);
  if (!Number.isInteger(size) || size < 1 || size > vocabSize) throw new Error(`--size must be an integer from 1 to the vocabulary's ${vocabSize}`);
  const ids = rankTokens(counts, size);
  const total = counts.reduce((a, b) => a + b, 0);
  const covered = ids.reduce((a, id) => a + counts[id]!, 0);
  writeFileSync(values.out, withShortlist(new Uint8Array(readFileSync(values.head)), ids));
  console.log(`wrote ${values.out}: ${size} of ${vocabSize} tokens, covering ${((100 * covered) / total).toFixed(1)}% of ${total} counted`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error: Error) => {
    console.error(`shortlist: ${error.message}`);
    process.exit(1);
  });
}
