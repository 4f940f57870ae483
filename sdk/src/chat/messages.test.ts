import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import type { ChatMessage } from '../types.js';
import { droppableTurns, toTemplateMessages, toTemplateTools, withoutOldestTurns } from './messages.js';

describe('toTemplateMessages', () => {
  it("gives templates OpenAI's fields in Hugging Face's shape", () => {
    const messages: ChatMessage[] = [
      { role: 'developer', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }] },
      { role: 'assistant', content: null, toolCalls: [{ id: 'c1', function: { name: 'f', arguments: '{"a": [1, 2]}' } }] },
      { role: 'assistant', content: 'x', toolCalls: [{ function: { name: 'g', arguments: 'not json' } }] },
      { role: 'tool', content: '42', toolCallId: 'c1', name: 'f' },
    ];
    expect(toTemplateMessages(messages)).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'one\ntwo' },
      { role: 'assistant', content: '', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: { a: [1, 2] } } }] },
      { role: 'assistant', content: 'x', tool_calls: [{ type: 'function', function: { name: 'g', arguments: 'not json' } }] },
      { role: 'tool', content: '42', tool_call_id: 'c1', name: 'f' },
    ]);
  });

  it('refuses what no template can render, naming the message', () => {
    const bad: [unknown, RegExp][] = [
      [[], /non-empty/],
      ['hi', /non-empty/],
      [[{ role: 'bot', content: 'x' }], /messages\[0\]\.role/],
      [[{ role: 'user', content: null }], /null only in an assistant message with tool calls/],
      [[{ role: 'assistant', content: null }], /null only/],
      [[{ role: 'user', content: 5 }], /must be a string/],
      [[{ role: 'user', content: 'a' }, { role: 'user', content: [{ type: 'image_url', image_url: 'u' }] }], /messages\[1\]\.content\[0\]/],
      [[{ role: 'user', content: 'a', toolCalls: [] }], /only assistant messages/],
      [[{ role: 'assistant', content: 'a', toolCalls: [{ function: {} }] }], /function\.name/],
      [[{ role: 'tool', content: 'a', toolCallId: 7 }], /toolCallId/],
    ];
    for (const [messages, message] of bad) {
      expect(() => toTemplateMessages(messages as ChatMessage[])).toThrow(InvalidArgumentError);
      expect(() => toTemplateMessages(messages as ChatMessage[])).toThrow(message);
    }
  });

  it('checks tool definitions', () => {
    expect(toTemplateTools(undefined)).toBeNull();
    expect(() => toTemplateTools([{ type: 'function' } as never])).toThrow(/tools\[0\]/);
  });
});

describe('turns', () => {
  const m = (role: string, content: string) => ({ role, content });
  const conversation = [
    m('system', 'S'),
    m('user', 'u1'),
    m('assistant', 'a1'),
    m('tool', 't1'),
    m('system', 'S2'),
    m('user', 'u2'),
    m('assistant', 'a2'),
    m('user', 'u3'),
  ];

  it('drop whole turns from the oldest, keeping every system message and the last turn', () => {
    expect(droppableTurns(conversation)).toBe(2);
    expect(withoutOldestTurns(conversation, 0)).toBe(conversation);
    expect(withoutOldestTurns(conversation, 1).map((x) => x.content)).toEqual(['S', 'S2', 'u2', 'a2', 'u3']);
    expect(withoutOldestTurns(conversation, 2).map((x) => x.content)).toEqual(['S', 'S2', 'u3']);
  });

  it('count an answer before any user message as a turn of its own', () => {
    const opening = [m('assistant', 'hello'), m('user', 'u1')];
    expect(droppableTurns(opening)).toBe(1);
    expect(withoutOldestTurns(opening, 1).map((x) => x.content)).toEqual(['u1']);
  });
});
