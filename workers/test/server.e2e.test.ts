/// <reference lib="dom" />
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, startDevServer, type DevServer } from './dev-server.js';
import { startOtherOrigin, type OtherOrigin } from './other-origin.js';

/**
 * The whole path a user takes: `npm start`'s script runs `wrangler dev` offline with the demo model in
 * local R2; the official OpenAI client and a real browser talk to it, from the playground and from a page of
 * another site. Memory and cold start are measured and written to workers/test-artifacts/measurements.json.
 */
const artifacts = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const measurements: Record<string, number> = {};
let server: DevServer;
let client: OpenAI;
let persistTo: string;
let site: OtherOrigin;

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  persistTo = mkdtempSync(join(tmpdir(), 'recyclegpt-r2-'));
  site = await startOtherOrigin();
  // No --model: the script serves the demo model and its recycle head from models/demo, as `npm start` does.
  // Browsers on http://localhost:<site> may call the API; http://127.0.0.1:<site> is another origin, not allowed.
  server = await startDevServer({ persistTo, vars: { CORS_ORIGIN: `http://localhost:${site.port}` } });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-needed-locally', maxRetries: 0 });
  measurements.devServerReadyMs = Math.round(server.readyMs);
  measurements.workerdRssBeforeLoadMiB = round(server.workerdRssMiB());
});

afterAll(async () => {
  await server?.stop();
  await site?.close();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
  writeFileSync(join(artifacts, 'measurements.json'), `${JSON.stringify(measurements, null, 2)}\n`);
  console.log('measurements', measurements);
});

const round = (x: number) => Math.round(x * 10) / 10;

describe('the OpenAI client against wrangler dev', () => {
  it('streams the first request, which loads the model from R2 (cold start to first token)', async () => {
    const unknown = await client.completions.create({ model: 'no-such-model', prompt: 'x', max_tokens: 1 }).catch((e) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    // The id is the file name without .gguf (the fixture's name carries a hash), so read it from the server.
    const { data } = await client.models.list();
    expect(data).toHaveLength(1);
    const model = data[0].id;

    const started = performance.now();
    const chunks = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let firstTokenMs: number | undefined;
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of chunks) {
      if (chunk.choices[0]?.text) firstTokenMs ??= performance.now() - started;
      text += chunk.choices[0]?.text ?? '';
      usage = chunk.usage ?? usage;
    }
    measurements.coldFirstTokenMs = Math.round(firstTokenMs!);
    measurements.workerdRssAfterLoadMiB = round(server.workerdRssMiB());
    expect(text.length).toBeGreaterThan(0);
    expect(usage?.completion_tokens).toBeGreaterThan(0);

    const again = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 0 });
    expect(again.choices[0].text).toBe(text);
    expect(again.choices[0].finish_reason).toMatch(/^(stop|length)$/);
    const warmStarted = performance.now();
    for await (const chunk of await client.completions.create({ model, prompt: 'Warm', max_tokens: 2, stream: true })) {
      if (chunk.choices[0]?.text) {
        measurements.warmFirstTokenMs = Math.round(performance.now() - warmStarted);
        break;
      }
    }
  });

  it('chats, streamed and not, with the same greedy answer', async () => {
    const model = (await client.models.list()).data[0].id;
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }];
    const whole = await client.chat.completions.create({ model, messages, max_completion_tokens: 10, temperature: 0 });
    expect(whole.choices[0].message.role).toBe('assistant');
    let streamed = '';
    for await (const chunk of await client.chat.completions.create({ model, messages, max_completion_tokens: 10, temperature: 0, stream: true })) {
      streamed += chunk.choices[0]?.delta.content ?? '';
    }
    expect(streamed).toBe(whole.choices[0].message.content);
    expect(whole.usage?.total_tokens).toBe((whole.usage?.prompt_tokens ?? 0) + (whole.usage?.completion_tokens ?? 0));
  });

  it('surfaces validation errors as the client typed errors', async () => {
    const model = (await client.models.list()).data[0].id;
    const error = await client.completions.create({ model, prompt: 'x', max_tokens: 1_000_000 }).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.param).toBe('max_tokens');
  });
});

type Usage = OpenAI.CompletionUsage;
type RecycleStats = { reused_prompt_tokens: number; decode_mode: string; acceptance_rate: number | null };

describe('chat over several turns', () => {
  it('reuses the cached prefix: each later turn runs only what follows the earlier ones', async () => {
    const model = (await client.models.list()).data[0].id;
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'system', content: 'You write about Python.' }];
    const turns: { prompt: number; reused: number }[] = [];
    for (const question of ['What is a list?', 'And a tuple?', 'How do I sort one?']) {
      messages.push({ role: 'user', content: question });
      const answer = await client.chat.completions.create({ model, messages, max_completion_tokens: 12, temperature: 0 });
      const stats = (answer as unknown as { recyclegpt: RecycleStats }).recyclegpt;
      turns.push({ prompt: (answer.usage as Usage).prompt_tokens, reused: stats.reused_prompt_tokens });
      messages.push({ role: 'assistant', content: answer.choices[0].message.content });
    }
    measurements.chatTurn3PromptTokens = turns[2].prompt;
    measurements.chatTurn3ReusedTokens = turns[2].reused;
    expect(turns[0].reused).toBe(0);
    for (const [i, turn] of turns.entries()) if (i > 0) expect(turn.reused, `turn ${i + 1}`).toBeGreaterThanOrEqual(turns[i - 1].prompt - 1);
  });

  it('gives log-probabilities through the client, streamed and not, and refuses them in fast mode', async () => {
    const model = (await client.models.list()).data[0].id;
    const request = { model, messages: [{ role: 'user' as const, content: 'Hello' }], max_completion_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 2 };
    const whole = await client.chat.completions.create(request);
    const content = whole.choices[0].logprobs!.content!;
    expect(content.length).toBeGreaterThan(0);
    expect(content.every((t) => t.top_logprobs.length === 2 && t.top_logprobs[0].logprob === t.logprob)).toBe(true);
    const streamed: OpenAI.ChatCompletionTokenLogprob[] = [];
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    expect(streamed).toEqual(content);
    const completion = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 4, temperature: 0, logprobs: 1 });
    expect(completion.choices[0].logprobs!.tokens).toHaveLength(4);
    expect(completion.choices[0].logprobs!.text_offset![0]).toBe(0);
    const fast = await client.chat.completions.create({ ...request, recycle: { mode: 'fast' } } as OpenAI.ChatCompletionCreateParamsNonStreaming).catch((e) => e);
    expect(fast).toBeInstanceOf(OpenAI.BadRequestError);
    expect(fast.param).toBe('logprobs');
  });
});

describe('the openai client in a page of another site (CORS)', () => {
  it('chats from an allowed origin, streamed and not, and is refused from another', async () => {
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    try {
      const run = async (origin: string) => {
        const page = await browser.newPage();
        await page.goto(origin);
        await page.waitForFunction(() => 'OpenAI' in globalThis);
        return page.evaluate(async (baseURL) => {
          const OpenAI = (globalThis as unknown as { OpenAI: typeof import('openai').default }).OpenAI;
          const client = new OpenAI({ baseURL, apiKey: 'not-needed-locally', dangerouslyAllowBrowser: true, maxRetries: 0 });
          try {
            const model = (await client.models.list()).data[0].id;
            const messages = [{ role: 'user' as const, content: 'Hello' }];
            const whole = await client.chat.completions.create({ model, messages, max_completion_tokens: 6, temperature: 0 });
            let streamed = '';
            for await (const chunk of await client.chat.completions.create({ model, messages, max_completion_tokens: 6, temperature: 0, stream: true })) streamed += chunk.choices[0]?.delta.content ?? '';
            return { ok: true, whole: whole.choices[0].message.content, streamed };
          } catch (error) {
            return { ok: false, error: (error as Error).constructor.name };
          }
        }, `${server.url}/v1`);
      };
      const allowed = await run(`http://localhost:${site.port}/`);
      expect(allowed).toMatchObject({ ok: true });
      expect(allowed.streamed).toBe(allowed.whole);
      expect(await run(`http://127.0.0.1:${site.port}/`)).toEqual({ ok: false, error: 'APIConnectionError' });
    } finally {
      await browser.close();
    }
  });
});

describe('the playground in Chromium', () => {
  it('chats with the demo model, names it, marks each token by where it came from, and shows the figures', async () => {
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 760 } });
      await page.goto(server.url);
      await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
      expect(await page.textContent('#about')).toContain('a 5M-parameter test model that does not write sensible text');
      await page.click('label[for=mode-exact]');
      await page.fill('#maxTokens', '40');
      expect(await page.isChecked('#mode-exact')).toBe(true);
      const finished = (turns: number) => page.waitForFunction((n) => document.querySelectorAll('.turn.assistant .meta').length === n, turns);
      const promptOf = async () => (await page.textContent('#stats'))!.match(/reused (\d+) of (\d+) prompt tokens/)!.slice(1).map(Number);
      await page.fill('#input', 'How do I open a file in Python?');
      await page.click('#send');
      await finished(1);
      // Turn 1 may reuse a few tokens from the conversations earlier tests had ("User: …").
      const [, prompt1] = await promptOf();
      await page.fill('#input', 'And how do I close it?');
      await page.click('#send');
      await finished(2);
      const about = await page.textContent('#about');
      expect(about).toMatch(/5M parameters llama Q8_0 · context 256 tokens · .* · recycle head loaded/);
      const stats = (await page.textContent('#stats'))!;
      expect(stats).toMatch(/^\d+ tokens · [\d.]+ tok\/s · first token \d+ ms · \d+ recycled \(\d+%\) · acceptance \d+% · reused (\d+) of (\d+) prompt tokens/);
      // Turn 2 reuses all of turn 1's prompt (but its last token, whose head row is rebuilt) and the answer's tokens
      // up to the first one the model chose where re-tokenizing its text gives another.
      const [reused2, prompt2] = await promptOf();
      expect(reused2).toBeGreaterThanOrEqual(prompt1 - 1);
      expect(reused2).toBeLessThan(prompt2);
      measurements.playgroundTurn2ReusedTokens = reused2;
      measurements.playgroundTurn2PromptTokens = prompt2;
      // The demo's recycle head guesses right often: some tokens of the answers are its kept guesses, some full passes'.
      const sources = await page.$$eval('.turn.assistant .tok', (spans) => spans.map((s) => s.className));
      expect(sources.some((c) => c.includes('recycled'))).toBe(true);
      expect(sources.some((c) => c.includes('pass'))).toBe(true);
      measurements.playgroundRecycledShare = round(sources.filter((c) => c.includes('recycled')).length / sources.length);
      await page.screenshot({ path: join(artifacts, 'playground.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});
