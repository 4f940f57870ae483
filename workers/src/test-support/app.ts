import { expect } from 'vitest';
import { createApp, lazyModels, type AppOptions } from '../app.js';
import { stubModel, type StubOptions } from './stub-model.js';

export const KEY = 'test-key';
export const auth = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };

/** The app over a stub model (see stub-model.ts), with an API key and CORS for https://example.com. */
export function setup(options: StubOptions & { maxQueue?: number; budget?: AppOptions['budget']; load?: () => Promise<never> } = {}) {
  // Each prompt's first word tags its tokens, so interleaved streams would show foreign tags.
  const model = stubModel({ tag: (prompt) => prompt.split(/\s/)[0] ?? '', ...options });
  let loads = 0;
  const app = createApp({
    models: lazyModels([{ id: 'stub', load: options.load ?? (async () => (loads++, model)), description: 'a stub that writes w0 w1 w2' }]),
    auth: { apiKey: KEY },
    limits: { maxTokens: 64, maxPromptTokens: 100, maxQueue: options.maxQueue },
    cors: { origin: 'https://example.com' },
    budget: options.budget,
  });
  const post = (path: string, body: unknown, headers: Record<string, string> = auth, init: RequestInit = {}) =>
    app.request(path, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body), ...init });
  return { app, model, post, loads: () => loads };
}

/** Response bodies as loose JSON: the assertions check their shape. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const json = (res: Response): Promise<any> => res.json();

/** Splits an SSE body into its `data:` payloads (comments, such as heartbeats, dropped). */
export async function sseEvents(response: Response): Promise<string[]> {
  const text = await response.text();
  expect(text.endsWith('\n\n')).toBe(true);
  return text
    .trim()
    .split('\n\n')
    .filter((block) => !block.startsWith(':'))
    .map((block) => {
      expect(block.startsWith('data: ')).toBe(true);
      return block.slice(6);
    });
}

/** The error a response carries, after checking OpenAI's shape. */
export async function errorOf(res: Response) {
  const { error } = await json(res);
  expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(error.message.length).toBeGreaterThan(10);
  return error as { message: string; type: string; param: string | null; code: string | null };
}
