/**
 * model.chat() on a fixture model whose GGUF carries a chat template (added to the file's metadata): the template is
 * rendered and tokenized as llama.cpp does (one BOS), the stream is generate()'s on those ids, generation stops at the
 * vocabulary's end-of-turn tokens, options reach the template, and every caller error is thrown by the call.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MISTRAL_7B_V0_2 } from '../../../test/fixtures/chat-templates.js';
import { withMetadata, type AddedKV } from '../../../test/fixtures/gguf-edit.js';
import { makeTestModel, STANDARD_SPECS } from '../../../test/fixtures/models.js';
import { ContextFullError, InvalidArgumentError } from '../errors.js';
import { loadModel } from '../model.js';
import type { ChatMessage, LoadOptions, Model } from '../types.js';

let base: Uint8Array;
const load = (kvs: AddedKV[], options: LoadOptions = {}) => loadModel(withMetadata(base, kvs), options);
const template = (text: string): AddedKV => ({ key: 'tokenizer.chat_template', type: 'string', value: text });

/** A template with a variable of its own and the tools, on top of ChatML turns. */
const TEST_TEMPLATE =
  "{% if tools %}Tools: {{ tools | map(attribute='function') | map(attribute='name') | join(', ') }}\n{% endif %}" +
  "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if greeting is defined %}{{ greeting }}{% endif %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const hello: ChatMessage[] = [{ role: 'user', content: 'Hello there' }];
let mistral: Model;

beforeAll(async () => {
  base = new Uint8Array(await readFile(await makeTestModel(STANDARD_SPECS.q8_llama_tied!)));
  mistral = await load([template(MISTRAL_7B_V0_2)]);
});
afterAll(() => mistral.dispose());

describe('chat with the GGUF template', () => {
  it('renders the template and tokenizes it with one BOS, as llama.cpp does', () => {
    const rendered = mistral.renderChat(hello);
    expect(rendered.renderer).toBe('template');
    expect(rendered.text).toBe('<s>[INST] Hello there [/INST]');
    const bos = mistral.tokenizer.bos!;
    // The template writes <s> and the tokenizer adds BOS: the text's is dropped, not doubled.
    expect(rendered.ids[0]).toBe(bos);
    expect(rendered.ids.filter((id) => id === bos)).toHaveLength(1);
    expect(rendered.ids).toEqual(mistral.tokenize('[INST] Hello there [/INST]', { parseSpecial: true }));
  });

  it('streams what generate() gives for the rendered prompt, with the same stats', async () => {
    const options = { maxTokens: 12, temperature: 0 };
    const stream = mistral.chat(hello, options);
    expect(stream.promptTokens).toBe(mistral.renderChat(hello).ids.length);
    const tokens = [];
    for await (const token of stream) tokens.push(token);
    const stats = await stream.stats;
    const plain = await mistral.complete(mistral.renderChat(hello).ids, options);
    expect(tokens.map((t) => t.id)).toEqual(plain.tokens);
    expect(tokens.map((t) => t.text).join('')).toBe(plain.text);
    expect(stats).toMatchObject({ promptTokens: plain.stats.promptTokens, generatedTokens: 12, finishReason: 'length' });
    expect(tokens.every((t) => t.channel === undefined)).toBe(true); // this vocabulary has no <think> tokens
    const completion = await mistral.completeChat(hello, options);
    expect(completion).toMatchObject({ content: plain.text, tokens: plain.tokens, finishReason: 'length' });
  });

  it("stops at the vocabulary's end-of-turn token", async () => {
    // Sampled, so that this random model writes varied tokens (greedy, it repeats one).
    const options = { maxTokens: 12, temperature: 20, topK: 0, topP: 1, minP: 0, seed: 5 };
    const free = await mistral.completeChat(hello, options);
    // Make a token the model writes (one it has not written before) the end of turn.
    const at = free.tokens.findIndex((id, i) => i >= 2 && !free.tokens.slice(0, i).includes(id));
    expect(at).toBeGreaterThan(0);
    const withEot = await load([template(MISTRAL_7B_V0_2), { key: 'tokenizer.ggml.eot_token_id', type: 'u32', value: free.tokens[at]! }]);
    const stopped = await withEot.completeChat(hello, options);
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.tokens).toEqual(free.tokens.slice(0, at));
    withEot.dispose();
  });

  it('passes template options and tools through, and keeps its own variables', async () => {
    const model = await load([template(TEST_TEMPLATE)]);
    const tools = [{ type: 'function' as const, function: { name: 'get_weather' } }, { type: 'function' as const, function: { name: 'get_time' } }];
    const rendered = model.renderChat(hello, { templateOptions: { greeting: 'Ahoy!' }, tools });
    expect(rendered.text).toBe('Tools: get_weather, get_time\n<|im_start|>user\nHello there<|im_end|>\nAhoy!<|im_start|>assistant\n');
    expect(() => model.renderChat(hello, { templateOptions: { add_generation_prompt: false } })).toThrow(/set by the SDK/);
    model.dispose();
  });

  it("raises the template's own refusal at the call", () => {
    // Mistral 7B v0.2's template has no system role.
    const withSystem: ChatMessage[] = [{ role: 'system', content: 'Be brief.' }, ...hello];
    expect(() => mistral.chat(withSystem)).toThrow(InvalidArgumentError);
    expect(() => mistral.chat(withSystem)).toThrow(/chat template refused this conversation: .*roles must alternate/);
  });
});

describe('chat without a usable template', () => {
  it('falls back to plain turns without a template, and guesses the family of one the engine cannot parse', async () => {
    const plain = await loadModel(base);
    expect(plain.renderChat(hello)).toMatchObject({ renderer: 'plain', text: 'User: Hello there\nAssistant:' });
    // The fallback's stop string ends the answer at the next "User:" turn.
    const out = await plain.completeChat(hello, { maxTokens: 4, temperature: 0 });
    expect(out.content).not.toContain('\nUser:');
    plain.dispose();
    const broken = await load([template("{% for m in messages %}<|im_start|>{{ m.content ")]);
    expect(broken.renderChat(hello)).toMatchObject({ renderer: 'chatml', text: '<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n' });
    broken.dispose();
  });
});

describe('a conversation longer than the context', () => {
  const turns = (n: number): ChatMessage[] => [
    { role: 'system', content: 'Keep it short.' },
    ...Array.from({ length: n }, (_, i): ChatMessage[] => [
      { role: 'user', content: `question number ${i} about the sea` },
      { role: 'assistant', content: `answer number ${i}` },
    ]).flat(),
    { role: 'user', content: 'the last question' },
  ];
  // This fixture's small vocabulary spells ChatML's markers out in many tokens: a turn is about 40.
  const CONTEXT = 200;
  let small: Model;
  beforeAll(async () => (small = await load([template(TEST_TEMPLATE)], { contextLength: CONTEXT })));
  afterAll(() => small.dispose());
  /** The prompt's length, also where it does not fit. */
  const length = (messages: ChatMessage[]) => {
    try {
      return small.renderChat(messages).ids.length;
    } catch (error) {
      return (error as ContextFullError).promptTokens;
    }
  };

  it('is a CONTEXT_FULL error at the call, with both numbers', () => {
    const long = turns(8);
    expect(() => small.chat(long)).toThrow(ContextFullError);
    try {
      small.chat(long);
    } catch (error) {
      expect(error).toMatchObject({ code: 'CONTEXT_FULL', contextLength: CONTEXT, promptTokens: length(long) });
      expect((error as ContextFullError).promptTokens).toBeGreaterThan(CONTEXT);
      expect((error as Error).message).toMatch(/truncate: 'oldest'/);
    }
  });

  it("with truncate: 'oldest', drops the fewest oldest turns that leave room for maxTokens, keeping the system message", () => {
    const long = turns(8);
    const maxTokens = 10;
    const fitted = small.renderChat(long, { truncate: 'oldest', maxTokens });
    expect(fitted.droppedMessages).toBeGreaterThan(0);
    expect(fitted.droppedMessages % 2).toBe(0); // whole turns
    expect(fitted.ids.length + maxTokens).toBeLessThanOrEqual(CONTEXT);
    expect(fitted.text).toContain('Keep it short.');
    expect(fitted.text).toContain('the last question');
    expect(fitted.text).not.toContain('question number 0 ');
    // One turn fewer dropped would not leave the room.
    const kept = [long[0]!, ...long.slice(1 + fitted.droppedMessages - 2)];
    expect(length(kept) + maxTokens).toBeGreaterThan(CONTEXT);
    // What chat() runs is that prompt.
    expect(() => small.chat(long, { truncate: 'oldest', maxTokens })).not.toThrow();
  });

  it('is CONTEXT_FULL even with truncation when the last turn alone is too long', () => {
    const huge: ChatMessage[] = [{ role: 'user', content: 'sea '.repeat(CONTEXT) }];
    expect(() => small.chat(huge, { truncate: 'oldest' })).toThrow(/even its last turn/);
  });
});

describe('chat options', () => {
  it('are checked at the call', () => {
    const refused: [ChatMessage[], object, RegExp][] = [
      [hello, { truncate: 'newest' }, /truncate/],
      [hello, { reasoning: 'hidden' }, /reasoning/],
      [hello, { templateOptions: 'x' }, /templateOptions/],
      [hello, { tools: {} }, /tools/],
      [hello, { temperature: -1 }, /temperature/],
      [hello, { decode: { mode: 'fast' } }, /recycle head/],
      [[], {}, /non-empty/],
      [[{ role: 'user', content: null }], {}, /null/],
    ];
    for (const [messages, options, error] of refused) expect(() => mistral.chat(messages, options as never)).toThrow(error);
  });
});
