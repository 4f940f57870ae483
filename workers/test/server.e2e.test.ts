/// <reference lib="dom" />
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from './dev-server.js';

/**
 * The whole path a user takes: `npm start`'s script runs `wrangler dev` offline with the demo model in
 * local R2; the official OpenAI client and a real browser talk to it. Memory and cold start are measured
 * and written to workers/test-artifacts/measurements.json.
 */
const artifacts = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const measurements: Record<string, number> = {};
let server: DevServer;
let client: OpenAI;
let persistTo: string;

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  persistTo = mkdtempSync(join(tmpdir(), 'recyclegpt-r2-'));
  // No --model: the script serves the demo model and its recycle head from models/demo, as `npm start` does.
  server = await startDevServer({ persistTo });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-needed-locally', maxRetries: 0 });
  measurements.devServerReadyMs = Math.round(server.readyMs);
  measurements.workerdRssBeforeLoadMiB = round(server.workerdRssMiB());
});

afterAll(async () => {
  await server?.stop();
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

describe('the playground in Chromium', () => {
  it('streams a completion into the page and shows the stats', async () => {
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(server.url);
      await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
      await page.fill('#prompt', 'To install the package, run');
      await page.fill('#maxTokens', '32');
      await page.selectOption('#mode', 'exact');
      await page.click('#submit');
      await page.waitForFunction(() => document.getElementById('stats')!.textContent!.includes('acceptance'));
      const output = await page.textContent('#output');
      const stats = await page.textContent('#stats');
      expect(output!.length).toBeGreaterThan(0);
      expect(stats).toMatch(/\d+ tokens · [\d.]+ tok\/s/);
      // The demo model's recycle head: exact mode reports how many recycled tokens it kept.
      expect(stats).toMatch(/mode exact · acceptance \d+%/);
      await page.screenshot({ path: join(artifacts, 'playground.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});
