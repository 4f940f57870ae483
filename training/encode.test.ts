// training/encode.ts: a corpus encoded with a base's own tokenizer into the token file the trainer reads.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { writeGGUF } from '../test/fixtures/gguf-writer.js';
import { buildVocab, type VocabKind } from '../test/fixtures/vocab.js';
import { createTokenizer } from '../sdk/src/tokenizer/index.js';
import { readGGUFHeader } from '../sdk/src/gguf/load.js';
import { DOC_SEPARATOR, encodeCorpus } from './encode.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOCS = ['The quick brown fox.\nIt jumps over the lazy dog.', '  leading spaces, café 日本語 🚀', 'def f(x):\n\treturn x * 2'];

describe('training/encode.ts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'encode-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A tensorless GGUF carrying only a vocabulary: all encode.ts reads. */
  function headerOnly(kind: VocabKind): string {
    const path = join(dir, `${kind}.gguf`);
    const vocab = buildVocab(kind);
    writeFileSync(path, writeGGUF({ metadata: [{ key: 'general.architecture', type: 'string', value: 'llama' }, ...vocab.metadata], tensors: [] }));
    return path;
  }

  it.each([
    ['gpt2', 2],
    ['qwen3', 4],
  ] as const)('encodes each document with the %s tokenizer into %i-byte ids the trainer reads back', async (kind, width) => {
    const base = headerOnly(kind);
    const tokenizer = createTokenizer((await readGGUFHeader(base)).metadata);
    const expected = DOCS.flatMap((doc) => tokenizer.encode(doc));
    const { bytes, tokens, documents } = await encodeCorpus(base, DOCS.join(DOC_SEPARATOR));
    expect({ tokens, documents, bytes: bytes.length }).toEqual({ tokens: expected.length, documents: 3, bytes: expected.length * width });
    if (kind === 'qwen3') expect(Math.max(...expected)).toBeGreaterThan(65535); // the ids need 32 bits

    const file = join(dir, `${kind}.bin`);
    writeFileSync(file, bytes);
    const read = spawnSync('/usr/bin/python3', ['-c', `
import sys
from training.train import load_tokens
print(list(map(int, load_tokens(sys.argv[1], int(sys.argv[2]), 1))))`, file, String(tokenizer.vocabSize)], { cwd: ROOT, encoding: 'utf8' });
    expect(read.stderr).toBe('');
    expect(JSON.parse(read.stdout)).toEqual(expected);
  });
});
