/**
 * Runs every kernel case and the tiny-model cases (testing/cases.ts) in headless Debian chromium with SwiftShader's
 * WebGPU, and checks their numbers here. Skipped, with the reason, when chromium or a WebGPU adapter is missing.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cases, type Check } from './testing/cases.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader', '--enable-unsafe-swiftshader', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];

let browser: Browser | undefined;
let server: Server | undefined;
let page: Page | undefined;
let skipReason: string | undefined;
const pageErrors: string[] = [];

async function bundlePage(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./testing/page.ts', import.meta.url))],
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false,
  });
  return result.outputFiles[0]!.text;
}

/** Serves the bundle over http://127.0.0.1 (a secure context, which navigator.gpu requires). */
async function serve(script: string): Promise<string> {
  server = createServer((req, res) => {
    const isScript = req.url === '/page.js';
    res.setHeader('content-type', isScript ? 'text/javascript' : 'text/html');
    res.end(isScript ? script : '<!doctype html><script type="module" src="/page.js"></script>');
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    skipReason = `chromium not found at ${CHROMIUM} (set CHROMIUM_PATH)`;
    return;
  }
  const url = await serve(await bundlePage());
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  page = await browser.newPage();
  page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => 'harness' in globalThis);
  const unavailable = await page.evaluate(() => (globalThis as unknown as { harness: { unavailable(): Promise<string | null> } }).harness.unavailable());
  if (unavailable) skipReason = `no WebGPU in chromium: ${unavailable}`;
});

afterAll(async () => {
  await browser?.close();
  server?.close();
});

describe('WGSL kernels and WebGPUModel in chromium', () => {
  for (const name of Object.keys(cases)) {
    it(name, async (ctx) => {
      if (skipReason) ctx.skip(skipReason);
      pageErrors.length = 0;
      const checks = await page!.evaluate((n) => (globalThis as unknown as { harness: { run(n: string): Promise<Check[]> } }).harness.run(n), name);
      expect(pageErrors, 'WebGPU errors in the page').toEqual([]);
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
