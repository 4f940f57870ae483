import { describe, expect, it } from 'vitest';
import type { GeneratedToken, GenerationStats, TokenStream } from '../types.js';
import { collectChat } from './completion.js';

function streamOf(tokens: Omit<GeneratedToken, 'source'>[]): TokenStream {
  const stats = { finishReason: 'stop' } as GenerationStats;
  return {
    promptTokens: 1,
    stats: Promise.resolve(stats),
    async *[Symbol.asyncIterator]() {
      for (const t of tokens) yield { source: 'pass', ...t };
    },
  };
}

describe('collectChat', () => {
  it('returns the answer and the reasoning apart', async () => {
    const out = await collectChat(
      streamOf([
        { id: 1, text: '', channel: 'reasoning' },
        { id: 2, text: 'Think', channel: 'reasoning' },
        { id: 3, text: '.\n', channel: 'reasoning' },
        { id: 4, text: '', channel: 'reasoning' },
        { id: 5, text: 'Yes', channel: 'content' },
        { id: 6, text: '.', channel: 'content' },
      ]),
    );
    expect(out).toMatchObject({ content: 'Yes.', reasoning: 'Think.', tokens: [1, 2, 3, 4, 5, 6], finishReason: 'stop' });
  });

  it('has no reasoning when the model wrote no block', async () => {
    const out = await collectChat(streamOf([{ id: 5, text: 'Yes' }, { id: 6, text: '.', channel: 'content' }]));
    expect(out.content).toBe('Yes.');
    expect('reasoning' in out).toBe(false);
  });
});
