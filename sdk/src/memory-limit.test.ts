/**
 * LoadOptions.memoryLimit: the up-front check of weights + KV caches + scratch against the caller's limit (a Worker's
 * isolate), and the default KV sequences giving way to it before a model is refused.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, RecycleGPTError } from './errors.js';
import { loadModel } from './model.js';

const DEMO = new URL('../../models/demo/demo-q8_0.gguf', import.meta.url);

describe('memoryLimit', () => {
  it('keeps fewer default sequences where the limit leaves no room, refuses with the sizes where one does not fit', async () => {
    const file = new Uint8Array(await readFile(DEMO));
    const roomy = await loadModel(file, { contextLength: 256 });
    const { sequences, kvBytesPerSequence } = roomy.info;
    roomy.dispose();
    expect(sequences).toBeGreaterThan(1);

    // Room for the file and one sequence's cache, with scratch, but not for the default number of sequences.
    const limit = file.length + kvBytesPerSequence * (sequences - 0.5);
    const squeezed = await loadModel(file, { contextLength: 256, memoryLimit: limit });
    expect(squeezed.info.sequences).toBeGreaterThanOrEqual(1);
    expect(squeezed.info.sequences).toBeLessThan(sequences);
    expect((await squeezed.complete('Once upon a time', { maxTokens: 4, temperature: 0 })).text.length).toBeGreaterThan(0);
    squeezed.dispose();

    // Sequences asked for are kept or refused, never reduced.
    const asked = await loadModel(file, { contextLength: 256, memoryLimit: limit, sequences }).catch((e: unknown) => e);
    expect(asked).toBeInstanceOf(RecycleGPTError);
    expect((asked as RecycleGPTError).code).toBe('OUT_OF_MEMORY');
    expect((asked as Error).message).toMatch(new RegExp(`KV cache [\\d.]+ MiB for 256 tokens × ${sequences} sequence\\(s\\).*more than the memoryLimit of`));

    const tiny = await loadModel(file, { memoryLimit: file.length / 2 }).catch((e: unknown) => e);
    expect((tiny as RecycleGPTError).code).toBe('OUT_OF_MEMORY');
    expect((tiny as Error).message).toMatch(/× 1 sequence\(s\)/);
  });

  it('must be a positive number', async () => {
    for (const memoryLimit of [0, -1, Number.NaN, Infinity]) {
      await expect(loadModel(DEMO.pathname, { memoryLimit })).rejects.toBeInstanceOf(InvalidArgumentError);
    }
  });
});
