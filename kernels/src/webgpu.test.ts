/**
 * Runs every kernel case and the tiny-model cases (testing/cases.ts) in headless Debian chromium with SwiftShader's
 * WebGPU, and checks their numbers here. Skipped, with the reason, when chromium or a WebGPU adapter is missing.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBrowserPage, type BrowserPage } from './testing/browser.js';
import { cases, type Check } from './testing/cases.js';

let browser: BrowserPage | undefined;
let skipReason: string | undefined;

beforeAll(async () => {
  browser = await openBrowserPage(fileURLToPath(new URL('./testing/page.ts', import.meta.url)));
  skipReason = browser.skipReason;
  if (skipReason) return;
  const unavailable = await browser.page!.evaluate(() => (globalThis as unknown as { harness: { unavailable(): Promise<string | null> } }).harness.unavailable());
  if (unavailable) skipReason = `no WebGPU in chromium: ${unavailable}`;
});

afterAll(async () => {
  await browser?.close();
});

describe('WGSL kernels and WebGPUModel in chromium', () => {
  for (const name of Object.keys(cases)) {
    it(name, async (ctx) => {
      if (skipReason) ctx.skip(skipReason);
      const { page, errors } = browser!;
      errors.length = 0;
      const checks = await page!.evaluate((n) => (globalThis as unknown as { harness: { run(n: string): Promise<Check[]> } }).harness.run(n), name);
      expect(errors, 'WebGPU errors in the page').toEqual([]);
      expect(checks.length).toBeGreaterThan(0);
      for (const check of checks) {
        if ('limit' in check) {
          expect(check.error, `${check.what}: max |gpu - reference| = ${check.error}, limit ${check.limit}`).toBeLessThanOrEqual(check.limit);
        } else {
          expect(check.got, check.what).toEqual(check.want);
        }
      }
    });
  }
});
