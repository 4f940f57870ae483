/**
 * The decode loop over a scripted backend (its argmax is the next token of a script): the reasoning channel, the
 * text held back across a channel switch, and the stats' timing where the clock stands still.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Backend } from './backend.js';
import type { LlamaConfig } from './binding.js';
import { Context, decode, type ReasoningMarkers } from './generate.js';
import type { Tokenizer } from './tokenizer/types.js';
import type { GeneratedToken, GenerateOptions, GenerationStats } from './types.js';

const TEXT = ['<s>', 'Hi', ' there', '<think>', '</think>', '\n', '\n\n', 'Let me think.', 'Answer', '.', '<|im_end|>', '\nUser'];
const [, HI, THERE, OPEN, CLOSE, NL, BLANK, THINK, ANSWER, DOT, END] = TEXT.keys();
const MARKERS: ReasoningMarkers = { open: OPEN!, close: CLOSE!, inside: false };
const PROMPT = [0, HI!, THERE!];

/** Emits `script` after the prompt, then the end-of-turn token. */
class ScriptBackend implements Backend {
  readonly config = { vocabSize: TEXT.length, contextLength: 64, maxBatch: 8 } as LlamaConfig;
  readonly recycleMaxBatch = 0;
  readonly sequences = 1;
  selectSequence(): void {}
  private next: number[] = [];

  constructor(private readonly script: number[]) {}

  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number): void {
    // Row r predicts the token after position pos + logitsFrom + r.
    this.next = Array.from({ length: tokens.length - logitsFrom }, (_, r) => this.script[pos + logitsFrom + r + 1 - PROMPT.length] ?? END!);
  }

  logits(row = 0): Float32Array {
    const logits = new Float32Array(TEXT.length);
    logits[this.next[row]!] = 10;
    return logits;
  }

  argmax(row = 0): number {
    return this.next[row]!;
  }

  recycleForward(): void {
    throw new Error('no head');
  }
  recycleLogits(): Float32Array {
    throw new Error('no head');
  }
  recycleArgmax(): number {
    throw new Error('no head');
  }
  free(): void {}
}

const tokenizer = {
  isEog: (id: number) => id === END,
  tokenToBytes: (id: number) => new TextEncoder().encode(TEXT[id]),
} as unknown as Tokenizer;

async function run(script: number[], options: GenerateOptions = {}, markers?: ReasoningMarkers) {
  const tokens: GeneratedToken[] = [];
  let stats: GenerationStats | undefined;
  const context = new Context(new ScriptBackend(script), tokenizer);
  for await (const t of decode(context, PROMPT, { temperature: 0, maxTokens: 32, ...options }, (s) => (stats = s), markers)) tokens.push(t);
  const text = (channel: string) => tokens.filter((t) => (t.channel ?? 'content') === channel).map((t) => t.text).join('');
  return { tokens, stats: stats!, content: text('content'), reasoning: text('reasoning') };
}

describe('reasoning channel', () => {
  const THINKING = [OPEN!, NL!, THINK!, NL!, CLOSE!, BLANK!, ANSWER!, DOT!];

  it('tells the reasoning block from the answer; the markers and the layout whitespace give no text', async () => {
    const out = await run(THINKING, {}, MARKERS);
    expect(out.tokens.map((t) => t.id)).toEqual(THINKING);
    expect(out.tokens.map((t) => t.channel)).toEqual(['reasoning', 'reasoning', 'reasoning', 'reasoning', 'reasoning', 'content', 'content', 'content']);
    expect(out.tokens.map((t) => t.text)).toEqual(['', '', 'Let me think.', '\n', '', '', 'Answer', '.']);
    expect(out.stats.finishReason).toBe('stop');
  });

  it('starts in the reasoning channel when the prompt left a block open', async () => {
    const out = await run([THINK!, CLOSE!, BLANK!, ANSWER!], {}, { ...MARKERS, inside: true });
    expect(out.tokens.map((t) => t.channel)).toEqual(['reasoning', 'reasoning', 'content', 'content']);
    expect(out.reasoning).toBe('Let me think.');
    expect(out.content).toBe('Answer');
  });

  it('ends the reasoning with the text a stop sequence held back at the switch', async () => {
    // '\n' could start the stop sequence '\nUser' and is held; the marker ends the block, so it is the block's text.
    const out = await run([OPEN!, THINK!, NL!, CLOSE!, ANSWER!], { stop: ['\nUser'] }, MARKERS);
    expect(out.reasoning).toBe('Let me think.\n');
    expect(out.content).toBe('Answer');
  });

  it('leaves text and tokens as they are without markers', async () => {
    const out = await run(THINKING);
    expect(out.tokens.every((t) => t.channel === undefined)).toBe(true);
    expect(out.content).toBe('<think>\nLet me think.\n</think>\n\nAnswer.');
  });
});

describe('stats', () => {
  afterEach(() => vi.restoreAllMocks());

  it('say the time was not measured where the clock stands still while code runs, instead of reporting 0 ms', async () => {
    vi.spyOn(performance, 'now').mockReturnValue(1234);
    const frozen = await run([ANSWER!, DOT!]);
    expect(frozen.stats).toMatchObject({ timing: 'unmeasured', prefillMs: 0, decodeMs: 0, prefillTokensPerSecond: 0, decodeTokensPerSecond: 0, generatedTokens: 2 });
  });

  it('count every token as coming from a pass without a head', async () => {
    const out = await run([ANSWER!, DOT!]);
    expect(out.tokens.map((t) => t.source)).toEqual(['pass', 'pass']);
  });
});
