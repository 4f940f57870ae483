/**
 * Reads tool calls out of a chat answer as it streams, per template family (tools.ts). Tokens come out labelled:
 * `channel: 'tool'` for a call's markup (never shown as content), `'content'` for the rest, and the token that
 * completes a piece of a call carries OpenAI's deltas (`index`, `id`, `type`, `function.name`, then `arguments`
 * chunks). A token that may start a call is held until it is clear; markup that does not parse as a call of a
 * declared tool is content after all, as written.
 */
import type { GeneratedToken, TokenStream, ToolCallDelta } from '../types.js';
import { ARGUMENTS_KEY, CALL_CLOSE, CALL_OPEN, type ToolFamily } from './tools.js';

const PYTHON_TAG = '<|python_tag|>';

/** A call's JSON from its start up to its arguments' value: `{"name": "f", "arguments": `. */
const CALL_HEAD = /^\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"(?:arguments|parameters)"\s*:\s*/;

/** `call_` and 24 random hex digits (getRandomValues: randomUUID is missing from pages served over plain http). */
export function newCallId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `call_${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** A call's JSON, if it is one: `{"name": <declared>, "<key>": <object>}` (a JSON string of an object is taken too). */
export function parseCall(text: string, family: ToolFamily, names: Set<string>): { name: string; arguments: string } | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const { name } = value as { name?: unknown };
  let args = (value as Record<string, unknown>)[ARGUMENTS_KEY[family]] ?? (value as Record<string, unknown>).arguments;
  if (typeof name !== 'string' || !names.has(name)) return null;
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args);
    } catch {
      return null;
    }
  }
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return null;
  return { name, arguments: JSON.stringify(args) };
}

/** Where a suffix of `text` could be the start of `marker` (text.length when none). */
function partialStart(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) if (marker.startsWith(text.slice(text.length - n))) return text.length - n;
  return text.length;
}

const content = (token: GeneratedToken, text = token.text): GeneratedToken => ({ ...token, text, channel: 'content' });
const tool = (token: GeneratedToken, toolCalls?: ToolCallDelta[]): GeneratedToken => ({ ...token, channel: 'tool', ...(toolCalls && { toolCalls }) });

export class ToolCallReader {
  /** Tokens not yet given out, and their text. */
  private held: GeneratedToken[] = [];
  private text = '';
  /** Inside a call's markup (auto), or the forced call's JSON. */
  private inCall: boolean;
  /** Where the call's marker starts in the first held token's text (auto: text before it is content). */
  private markerAt = 0;
  private calls = 0;
  /** llama3: whether the answer's first non-space text has been seen. */
  private started = false;
  /** Forced: the JSON read so far (nesting depth, inside a string, after a backslash) and the arguments' state. */
  private depth = 0;
  private inString = false;
  private escaped = false;
  private args: 'before' | 'in' | 'after' = 'before';

  constructor(
    private readonly family: ToolFamily,
    private readonly names: Set<string>,
    private readonly forced: boolean,
  ) {
    this.inCall = forced;
  }

  /** How many calls were given out. */
  get callCount(): number {
    return this.calls;
  }

  push(token: GeneratedToken): GeneratedToken[] {
    if (token.channel === 'reasoning') return [token];
    if (this.forced) return [this.pushForced(token)];
    this.held.push(token);
    this.text += token.text;
    return this.family === 'llama3' ? this.pushWhole() : this.pushMarked();
  }

  /** The rest, at the end of the answer: an unclosed call is a call if its JSON is complete. */
  finish(): GeneratedToken[] {
    if (this.forced || !this.inCall) return this.release(this.held.length);
    const body = this.family === 'llama3' ? this.text.trim().replace(PYTHON_TAG, '') : this.text.slice(this.text.indexOf(CALL_OPEN) + CALL_OPEN.length);
    return this.endCall(body);
  }

  // --- hermes / generic: <tool_call> … </tool_call> anywhere in the answer ---

  private pushMarked(): GeneratedToken[] {
    const out: GeneratedToken[] = [];
    if (!this.inCall) {
      const open = this.text.indexOf(CALL_OPEN);
      if (open < 0) return this.releaseBefore(partialStart(this.text, CALL_OPEN));
      out.push(...this.releaseBefore(open));
      this.markerAt = this.text.indexOf(CALL_OPEN);
      this.inCall = true;
    }
    const close = this.text.indexOf(CALL_CLOSE, this.markerAt);
    if (close >= 0) out.push(...this.endCall(this.text.slice(this.markerAt + CALL_OPEN.length, close)));
    return out;
  }

  /** Gives out as content the held tokens that end at or before character `at` of the held text. */
  private releaseBefore(at: number): GeneratedToken[] {
    let count = 0;
    for (let end = 0; count < this.held.length && (end += this.held[count]!.text.length) <= at; ) count++;
    return this.release(count);
  }

  private release(count: number): GeneratedToken[] {
    const out = this.held.splice(0, count).map((t) => content(t));
    this.text = this.held.map((t) => t.text).join('');
    return out;
  }

  /**
   * A call's markup ended: its tokens go out as the call (the first one as content up to the marker, where text
   * came before it in the same token; the last one with the whole call as one delta), or as content when it is not one.
   */
  private endCall(body: string): GeneratedToken[] {
    this.inCall = false;
    const call = parseCall(body.trim(), this.family, this.names);
    if (!call) return this.release(this.held.length);
    const tokens = this.held;
    const delta: ToolCallDelta = { index: this.calls++, id: newCallId(), type: 'function', function: { name: call.name, arguments: call.arguments } };
    const out = tokens.map((t, i) => (i === 0 && this.markerAt > 0 ? content(t, t.text.slice(0, this.markerAt)) : tool(t)));
    out[out.length - 1] = { ...out[out.length - 1]!, toolCalls: [delta] };
    this.held = [];
    this.text = '';
    this.markerAt = 0;
    return out;
  }

  // --- llama3: the whole answer is one call's JSON ---

  private pushWhole(): GeneratedToken[] {
    if (this.started) return this.inCall ? [] : this.release(this.held.length);
    const lead = this.text.trimStart();
    if (!lead || PYTHON_TAG.startsWith(lead)) return [];
    this.started = true;
    if (lead.startsWith('{') || lead.startsWith(PYTHON_TAG)) {
      this.inCall = true;
      return [];
    }
    return this.release(this.held.length);
  }

  // --- forced: the output is the call's JSON; the name, then the arguments stream as they come ---

  private pushForced(token: GeneratedToken): GeneratedToken {
    const deltas: ToolCallDelta[] = [];
    const before = this.text.length;
    this.text += token.text;
    let from = before;
    if (this.args === 'before') {
      const head = CALL_HEAD.exec(this.text);
      if (!head) return tool(token);
      this.args = 'in';
      this.calls = 1;
      deltas.push({ index: 0, id: newCallId(), type: 'function', function: { name: JSON.parse(head[1]!) as string, arguments: '' } });
      from = head[0].length;
      this.depth = 1;
    }
    let end = from;
    for (let i = from; i < this.text.length && this.args === 'in'; i++, end = i) this.scan(this.text[i]!);
    if (end > from) deltas.push({ index: 0, function: { arguments: this.text.slice(from, end) } });
    return tool(token, deltas);
  }

  /** One character of the arguments' JSON; they end where the depth comes back to the call object's. */
  private scan(ch: string): void {
    if (this.inString) {
      if (this.escaped) this.escaped = false;
      else if (ch === '\\') this.escaped = true;
      else if (ch === '"') this.inString = false;
    } else if (ch === '"') this.inString = true;
    else if (ch === '{' || ch === '[') this.depth++;
    else if (ch === '}' || ch === ']') this.depth--;
    if (this.depth === 1 && !this.inString && ch === '}') this.args = 'after';
  }
}

/** `stream` with its tokens read for tool calls (held tokens come out when it is clear what they are). */
export function withToolCalls(stream: TokenStream, reader: ToolCallReader): TokenStream {
  async function* run(): AsyncGenerator<GeneratedToken> {
    for await (const token of stream) yield* reader.push(token);
    yield* reader.finish();
  }
  return { promptTokens: stream.promptTokens, stats: stream.stats, [Symbol.asyncIterator]: run };
}
