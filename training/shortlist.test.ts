/** training/shortlist.ts: the ranking, and a head copy that gains `recycle.shortlist` with its tensors untouched. */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseGGUF } from '../sdk/src/gguf/parse.js';
import { buildHeadGGUF, COPY_HEAD } from '../test/fixtures/recycle-head.js';
import { countIds, defaultSize, rankTokens, withShortlist } from './shortlist.js';

const demo = (file: string) => fileURLToPath(new URL(`../models/demo/${file}`, import.meta.url));

describe('training/shortlist.ts', () => {
  it('ranks tokens by count, ties and uncounted ones lowest id first', () => {
    expect(rankTokens(countIds([5, 2, 5, 9, 2, 5], 10), 6)).toEqual([5, 2, 9, 0, 1, 3]);
    expect(() => countIds([10], 10)).toThrow(/past the base's vocabulary of 10/);
    expect([defaultSize(4096), defaultSize(49152), defaultSize(151936), defaultSize(500)]).toEqual([1024, 6144, 18992, 500]);
  });

  it('adds the list in front of the metadata, keeping every tensor byte at its offset', () => {
    const head = buildHeadGGUF(demo('demo-q8_0.gguf'), COPY_HEAD);
    const listed = withShortlist(head, [9, 4, 7]);
    const [before, after] = [parseGGUF(head), parseGGUF(listed)];
    expect(Array.from(after.metadata['recycle.shortlist'] as ArrayLike<number>)).toEqual([9, 4, 7]);
    expect(after.tensors).toEqual(before.tensors);
    expect(after.dataOffset % 32).toBe(0);
    expect(Buffer.compare(listed.subarray(after.dataOffset), head.subarray(before.dataOffset))).toBe(0);
    expect(() => withShortlist(listed, [1])).toThrow(/already has 'recycle.shortlist'/);
  });
});
