/**
 * Node side of the browser tests: bundles a page entry with esbuild, serves it (and test files) on 127.0.0.1,
 * and opens it in headless Debian chromium with SwiftShader's WebGPU. `skipReason` says why tests cannot run.
 */
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { KERNELS_SOURCE } from './source-alias.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader', '--enable-unsafe-swiftshader', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];

export interface BrowserPage {
  /** Set when chromium is missing; the page is then absent. */
  skipReason?: string;
  page?: Page;
  /** Console errors and uncaught exceptions of the page since the last clear. */
  errors: string[];
  close(): Promise<void>;
}

async function bundle(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [entry], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false,
    // Node-only code paths (file sources) import these dynamically; the page never takes them.
    external: ['node:*'],
    // The SDK's pages test the kernels' sources, not their last build.
    alias: KERNELS_SOURCE,
  });
  return result.outputFiles[0]!.text;
}

/** Answers a request itself (true), or leaves it to the page server (false). */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Serves the bundle at /page.js and `files` at /files/<name>, over http://127.0.0.1 (a secure context, which navigator.gpu requires). */
async function serve(script: string, files: Record<string, Uint8Array>, handle?: RequestHandler): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (handle?.(req, res)) return;
    const file = req.url?.startsWith('/files/') ? files[decodeURIComponent(req.url.slice(7))] : undefined;
    if (file) {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(file);
      return;
    }
    const isScript = req.url === '/page.js';
    res.setHeader('content-type', isScript ? 'text/javascript' : 'text/html');
    res.end(isScript ? script : '<!doctype html><script type="module" src="/page.js"></script>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`, server };
}

/** Opens the bundled `entry` once it has set globalThis.harness; `handle` may answer requests first. */
export async function openBrowserPage(entry: string, files: Record<string, Uint8Array> = {}, handle?: RequestHandler): Promise<BrowserPage> {
  const errors: string[] = [];
  if (!existsSync(CHROMIUM)) return { skipReason: `chromium not found at ${CHROMIUM} (set CHROMIUM_PATH)`, errors, close: async () => {} };
  const { url, server } = await serve(await bundle(entry), files, handle);
  let browser: Browser | undefined;
  const close = async () => {
    await browser?.close();
    server.close();
  };
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    // An explicit context outlives its pages: a test can close a tab and open another on the same storage.
    const page = await (await browser.newContext()).newPage();
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForFunction(() => 'harness' in globalThis);
    return { page, errors, close };
  } catch (error) {
    await close();
    throw error;
  }
}
