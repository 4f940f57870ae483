/**
 * The `cache` load option in headless chromium (cache-page.ts), against real OPFS and Cache API stores and a model
 * server whose Range support, ETag and Content-Length the test switches, and which can cut the connection or stall
 * midway. Every load's greedy tokens must equal those of a load without the cache. Skipped, with the reason, when
 * chromium is missing.
 */
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openBrowserPage, type BrowserPage } from '../../../kernels/src/testing/browser.js';
import { KERNELS_SOURCE } from '../../../kernels/src/testing/source-alias.js';
import { makeTestModel, STANDARD_SPECS } from '../../../test/fixtures/models.js';
import type { CachedModel, CacheOptions, CacheReport, CacheStoreName } from './cache.js';

/** 64 KiB parts (the smallest allowed): the 740 KB fixture spans 12 of them. */
const PART = 64 << 10;
/** Where a cut or stalled download stops: 4 whole parts are stored by then. */
const CUT = 300_000;
const KEPT = 4 * PART;

interface Loaded {
  tokens?: number[];
  cache?: CacheReport;
  error?: { code?: string; message: string };
  /** The engine module's kernels (model.info.kernels). */
  kernels?: string;
  /** Progress as runs of one `from`: [from, first loaded, last loaded]. */
  runs: [string, number, number][];
}

interface Harness {
  load(cache?: CacheOptions, abortAt?: number, query?: string): Promise<Loaded>;
  loadTwice(cache: CacheOptions): Promise<Loaded[]>;
  list(): Promise<CachedModel[]>;
  remove(store?: CacheStoreName, key?: string): Promise<boolean>;
  reset(): Promise<void>;
  smallEstimate(free: number): void;
  damage(store: CacheStoreName, how: 'truncate-part' | 'drop-part' | 'short-body' | 'garble-meta'): Promise<void>;
  loadedSoFar(): number;
}

interface ServerMode {
  range: boolean;
  etag?: string;
  contentLength: boolean;
  /** File offset where the response stops and hangs until the test cuts it (`cutStalled`) or closes the tab. */
  stallAt?: number;
}

const NORMAL: ServerMode = { range: true, etag: '"v1"', contentLength: true };
let mode: ServerMode = NORMAL;
/** The Range header of each request for the model. */
let requests: (string | undefined)[] = [];
const stalled: ServerResponse[] = [];
let model: Uint8Array;
let modelUrl: string;

/** GET /model.gguf, as a static file server would answer it under `mode`. */
function serveModel(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.url?.split('?')[0] !== '/model.gguf') return false;
  requests.push(req.headers.range);
  const range = mode.range ? /^bytes=(\d+)-$/.exec(req.headers.range ?? '') : null;
  const start = range ? Number(range[1]) : 0;
  res.statusCode = range ? 206 : 200;
  if (range) res.setHeader('content-range', `bytes ${start}-${model.length - 1}/${model.length}`);
  if (mode.range) res.setHeader('accept-ranges', 'bytes');
  if (mode.etag) res.setHeader('etag', mode.etag);
  if (mode.contentLength) res.setHeader('content-length', model.length - start);
  res.setHeader('content-type', 'application/octet-stream');
  // Keeps chromium's HTTP cache out of it: every load's requests reach this server.
  res.setHeader('cache-control', 'no-store');
  if (mode.stallAt === undefined || mode.stallAt <= start) {
    // Written before end(), so that without a content-length header Node sends the body chunked instead of adding one.
    res.write(model.subarray(start));
    res.end();
    return true;
  }
  res.write(model.subarray(start, mode.stallAt));
  stalled.push(res);
  return true;
}

/**
 * Waits until the page has loaded the bytes of KEPT's parts and a little more (so those parts are whole in the store),
 * of a response stalled at CUT. Cutting the connection only then is what makes the test deterministic: chromium
 * drops body bytes it has not handed to the page when the connection fails.
 */
async function waitPastKept(): Promise<void> {
  await page.waitForFunction((past) => (globalThis as unknown as { harness: Harness }).harness.loadedSoFar() >= past, KEPT + 8192);
}

function cutStalled(): void {
  for (const res of stalled.splice(0)) res.destroy();
}

/** README's "Loading in the browser" example, bundled against the SDK's sources, with the files it asks for. */
const readme = { script: '', demo: new Uint8Array(), demoRequests: 0 };
/** The engine, as built by `npm run build` (read in beforeAll, so that listing the tests needs no build). */
/** The engine's modules, by file name. */
let wasmFiles: Record<string, Uint8Array>;

async function bundleReadmeExample(): Promise<string> {
  const text = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const code = /## Loading in the browser\n[^]*?```ts\n([^]*?)```/.exec(text)?.[1];
  if (!code) throw new Error('README.md has no ts example under "## Loading in the browser"');
  const result = await build({
    stdin: { contents: code, loader: 'ts', resolveDir: fileURLToPath(new URL('.', import.meta.url)) },
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, external: ['node:*'],
    alias: { ...KERNELS_SOURCE, recyclegpt: fileURLToPath(new URL('../browser.ts', import.meta.url)) },
  });
  return result.outputFiles[0]!.text;
}

/** The README example's files: the script, and the engine and model at the URLs it resolves them to. */
function serveReadme(req: IncomingMessage, res: ServerResponse): boolean {
  const path = req.url?.split('?')[0];
  const body = path === '/readme.js' ? readme.script : path?.startsWith('/wasm/') ? wasmFiles[path.slice('/wasm/'.length)] : path === '/models/demo/demo-q8_0.gguf' ? readme.demo : undefined;
  if (body === undefined) return false;
  if (path === '/models/demo/demo-q8_0.gguf') readme.demoRequests++;
  res.setHeader('content-type', path === '/readme.js' ? 'text/javascript' : 'application/octet-stream');
  res.setHeader('cache-control', 'no-store');
  res.end(body);
  return true;
}

let browser: BrowserPage | undefined;
let page: Page;
let skipReason: string | undefined;
/** Tokens of a load without the cache option. */
let direct: number[];

function call<K extends keyof Harness>(method: K, ...args: Parameters<Harness[K]>): ReturnType<Harness[K]> {
  return page.evaluate(
    ([m, a]) => (globalThis as unknown as { harness: Record<string, (...x: unknown[]) => unknown> }).harness[m]!(...a),
    [method, args] as const,
  ) as ReturnType<Harness[K]>;
}

/** A new tab on the same origin and browser profile (the stores persist). */
async function newTab(): Promise<void> {
  const url = page.url();
  page = await page.context().newPage();
  await page.goto(url);
  await page.waitForFunction(() => 'harness' in globalThis);
}

beforeAll(async () => {
  model = readFileSync(await makeTestModel(STANDARD_SPECS.f32_llama!));
  wasmFiles = Object.fromEntries(['recyclegpt.wasm', 'recyclegpt-relaxed.wasm'].map((name) => [name, readFileSync(new URL(`../../wasm/${name}`, import.meta.url))]));
  readme.script = await bundleReadmeExample();
  readme.demo = readFileSync(new URL('../../../models/demo/demo-q8_0.gguf', import.meta.url));
  browser = await openBrowserPage(fileURLToPath(new URL('./cache-page.ts', import.meta.url)), wasmFiles, (req, res) => serveModel(req, res) || serveReadme(req, res));
  skipReason = browser.skipReason;
  if (skipReason) return;
  page = browser.page!;
  modelUrl = new URL('/model.gguf', page.url()).href;
  const loaded = await call('load');
  expect(loaded.error).toBeUndefined();
  direct = loaded.tokens!;
  expect(direct).toHaveLength(8);
  // Chromium runs relaxed SIMD exactly: the SDK picks the relaxed module.
  expect(loaded.kernels).toBe('relaxed');
});

afterAll(async () => {
  cutStalled();
  await browser?.close();
});

beforeEach(async (ctx) => {
  if (skipReason) ctx.skip(skipReason);
  mode = NORMAL;
  await call('reset');
  requests = [];
  browser!.errors.length = 0;
});

/** A cache report with these fields and no others. */
function report(store: CacheStoreName, fields: Partial<CacheReport>): CacheReport {
  return { store, key: modelUrl, status: 'stored', cachedBytes: 0, downloadedBytes: model.length, ...fields };
}

/** Loads with a download cut after KEPT (4 whole parts stored); the server answers normally afterwards. */
async function cutDownload(options: CacheOptions, server: ServerMode = NORMAL): Promise<Loaded> {
  mode = { ...server, stallAt: CUT };
  const loading = call('load', options);
  await waitPastKept();
  cutStalled();
  const loaded = await loading;
  mode = NORMAL;
  requests = [];
  return loaded;
}

for (const store of ['opfs', 'cache-api'] as const) {
  const options: CacheOptions = { store, partBytes: PART };

  describe(`cache: '${store}' in chromium`, () => {
    it('the first load stores the file as it streams; the next reads it with no request; delete removes it', async () => {
      const first = await call('load', options);
      expect(first.tokens).toEqual(direct);
      expect(first.cache).toEqual(report(store, { status: 'stored' }));
      expect(first.runs.map(([from]) => from)).toEqual(['network']);
      expect(requests).toEqual([undefined]);
      expect(await call('list')).toEqual([{ store, key: modelUrl, url: modelUrl, size: model.length, storedBytes: model.length, complete: true }]);

      requests = [];
      const second = await call('load', options);
      expect(requests, 'no request on a hit').toEqual([]);
      expect(second.tokens).toEqual(direct);
      expect(second.cache).toEqual(report(store, { status: 'hit', cachedBytes: model.length, downloadedBytes: 0 }));
      expect(second.runs).toEqual([['cache', expect.any(Number), model.length]]);

      expect(await call('remove')).toBe(true);
      expect(await call('list')).toEqual([]);
      expect(await call('remove')).toBe(false);
      expect(browser!.errors).toEqual([]);
    });

    it('a download cut midway keeps its whole parts; the next load resumes them with a Range request', async () => {
      const cut = await cutDownload(options);
      expect(cut.error?.code).toBe('SOURCE_UNREADABLE');
      expect(cut.error?.message).toMatch(new RegExp(`^the download of ${modelUrl} broke off after 0\\.[23] MiB: .*; the 0\\.3 MiB stored so far in ${store} are kept: loading again resumes from there if the server serves Range requests$`));
      expect(await call('list')).toEqual([{ store, key: modelUrl, url: modelUrl, size: model.length, storedBytes: KEPT, complete: false }]);

      const resumed = await call('load', options);
      expect(requests).toEqual([`bytes=${KEPT}-`]);
      expect(resumed.tokens).toEqual(direct);
      expect(resumed.cache).toEqual(report(store, { status: 'resumed', cachedBytes: KEPT, downloadedBytes: model.length - KEPT }));
      expect(resumed.runs.map(([from]) => from)).toEqual(['cache', 'network']);
      expect(resumed.runs[0]![2]).toBeLessThanOrEqual(KEPT);

      requests = [];
      expect((await call('load', options)).cache?.status).toBe('hit');
      expect(requests).toEqual([]);
    });

    it('a cut download restarts when the server ignores Range, using its whole-file answer', async () => {
      await cutDownload(options);
      mode = { ...NORMAL, range: false };
      const restarted = await call('load', options);
      expect(requests).toEqual([`bytes=${KEPT}-`]);
      expect(restarted.tokens).toEqual(direct);
      expect(restarted.cache).toEqual(report(store, {
        reason: 'an interrupted download (0.3 MiB stored) was discarded: the server answered the Range request with the whole file (it does not serve ranges, or the file changed)',
      }));
      expect((await call('list'))[0]?.complete).toBe(true);
    });

    it('a cut download of a file that changed on the server (new ETag) is discarded and downloaded again', async () => {
      await cutDownload(options);
      mode = { ...NORMAL, etag: '"v2"' };
      const loaded = await call('load', options);
      expect(requests).toEqual([`bytes=${KEPT}-`, undefined]);
      expect(loaded.tokens).toEqual(direct);
      expect(loaded.cache).toEqual(report(store, {
        reason: 'an interrupted download (0.3 MiB stored) was discarded: the file on the server changed (ETag "v2", stored "v1")',
      }));
    });

    it('resume: false starts over; a server without ETag or Last-Modified cannot be resumed', async () => {
      await cutDownload(options);
      const fresh = await call('load', { ...options, resume: false });
      expect(requests).toEqual([undefined]);
      expect(fresh.cache?.reason).toBe('an interrupted download (0.3 MiB stored) was discarded: resume is false');

      await call('reset');
      const cut = await cutDownload(options, { ...NORMAL, etag: undefined });
      expect(cut.error?.message).toMatch(/loading again starts over$/);
      expect(await call('list'), 'nothing kept that could not be resumed').toEqual([]);
    });

    it('an aborted load keeps its whole parts and the next load resumes', async () => {
      mode = { ...NORMAL, stallAt: CUT };
      const aborted = await call('load', options, KEPT + 8192);
      cutStalled();
      expect(aborted.error?.code).toBe('ABORTED');
      expect(await call('list')).toEqual([{ store, key: modelUrl, url: modelUrl, size: model.length, storedBytes: KEPT, complete: false }]);
      mode = NORMAL;
      requests = [];
      const resumed = await call('load', options);
      expect(requests).toEqual([`bytes=${KEPT}-`]);
      expect(resumed.tokens).toEqual(direct);
      expect(resumed.cache).toEqual(report(store, { status: 'resumed', cachedBytes: KEPT, downloadedBytes: model.length - KEPT }));
    });

    it('a tab closed mid-download: a new tab resumes from the whole parts', async () => {
      mode = { ...NORMAL, stallAt: CUT };
      const pending = call('load', options).catch(() => 'closed');
      await waitPastKept();
      await page.close();
      expect(await pending).toBe('closed');
      cutStalled();
      await newTab();
      mode = NORMAL;
      requests = [];
      const resumed = await call('load', options);
      expect(requests).toEqual([`bytes=${KEPT}-`]);
      expect(resumed.tokens).toEqual(direct);
      expect(resumed.cache).toEqual(report(store, { status: 'resumed', cachedBytes: KEPT, downloadedBytes: model.length - KEPT }));
    });

    const damages = ['truncate-part', 'drop-part'] as const;
    for (const how of damages) {
      it(`a stored copy with a ${how === 'drop-part' ? 'missing' : 'short'} part is discarded and downloaded again`, async () => {
        await call('load', options);
        await call('damage', store, how);
        requests = [];
        const loaded = await call('load', options);
        expect(requests).toEqual([undefined]);
        expect(loaded.tokens).toEqual(direct);
        const problem = how === 'drop-part' ? 'is missing' : `holds 100 bytes, not ${PART}`;
        expect(loaded.cache).toEqual(report(store, { reason: `the stored copy was incomplete (part 3 of 12 ${problem}) and was deleted` }));
      });
    }

    it('a stored copy with an unreadable record is downloaded again', async () => {
      await call('load', options);
      await call('damage', store, 'garble-meta');
      requests = [];
      const loaded = await call('load', options);
      expect(requests).toEqual([undefined]);
      expect(loaded.cache).toEqual(report(store, {}));
    });

    it('a storage quota that runs out midway: the model loads without being kept, or fails with required: true', async () => {
      const cdp = await page.context().newCDPSession(page);
      const origin = new URL(modelUrl).origin;
      await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 200_000 });
      try {
        const loaded = await call('load', options);
        expect(loaded.tokens).toEqual(direct);
        expect(loaded.cache).toMatchObject({ status: 'not-stored', downloadedBytes: model.length });
        expect(loaded.cache?.reason).toMatch(new RegExp(`^this site's storage quota ran out after \\d+\\.\\d MiB of the model's 0\\.7 MiB went into ${store}: delete cached models \\(deleteCachedModel\\) or other site data to make room$`));
        expect(await call('list')).toEqual([]);
        const required = await call('load', { ...options, required: true });
        expect(required.error?.code).toBe('CACHE_UNAVAILABLE');
        expect(required.error?.message).toMatch(/quota ran out.*required: true/);
      } finally {
        await cdp.send('Storage.overrideQuotaForOrigin', { origin });
        await cdp.detach();
      }
    });

    it('too little quota up front (navigator.storage.estimate): loads without keeping, or fails with required: true', async () => {
      await call('smallEstimate', 100_000);
      const loaded = await call('load', options);
      expect(loaded.tokens).toEqual(direct);
      expect(loaded.cache).toEqual(report(store, {
        status: 'not-stored',
        reason: 'the model needs 0.7 MiB but this site may store only 0.1 MiB more (navigator.storage.estimate): delete cached models (deleteCachedModel) or other site data to make room',
      }));
      expect(await call('list')).toEqual([]);
      const required = await call('load', { ...options, required: true });
      expect(required.error).toEqual({ code: 'CACHE_UNAVAILABLE', message: expect.stringMatching(/^the model needs 0\.7 MiB .*required: true/) });
    });
  });
}

describe('cache in chromium, either store', () => {
  it('a Cache API part shorter than its header says fails the load while reading, and the copy is deleted', async () => {
    const options: CacheOptions = { store: 'cache-api', partBytes: PART };
    await call('load', options);
    await call('damage', 'cache-api', 'short-body');
    const damaged = await call('load', options);
    expect(damaged.error?.code).toBe('SOURCE_UNREADABLE');
    expect(damaged.error?.message).toBe(`the copy of ${modelUrl} in cache-api is damaged (part 3 of 12 holds 100 bytes, not ${PART}); it was deleted: load the model again to download it`);
    expect(await call('list')).toEqual([]);
    expect((await call('load', options)).cache?.status).toBe('stored');
  });

  it('a response without Content-Length is loaded but not kept', async () => {
    mode = { ...NORMAL, contentLength: false };
    const loaded = await call('load', { store: 'opfs' });
    expect(loaded.tokens).toEqual(direct);
    expect(loaded.cache?.reason).toMatch(/^the server sent no Content-Length/);
    expect(await call('list')).toEqual([]);
  });

  it('two loads of one URL at once: the second waits for the first and reads its copy', async () => {
    const [a, b] = await call('loadTwice', { store: 'opfs', partBytes: PART });
    expect(requests).toEqual([undefined]);
    expect([a!.cache?.status, b!.cache?.status]).toEqual(['stored', 'hit']);
    expect(b!.tokens).toEqual(direct);
  });

  it('the two stores keep separate copies, deleted one store at a time', async () => {
    await call('load', { store: 'opfs', partBytes: PART });
    const other = await call('load', { store: 'cache-api', partBytes: PART });
    expect(other.cache?.status).toBe('stored');
    expect((await call('list')).map((m) => m.store).sort()).toEqual(['cache-api', 'opfs']);
    expect(await call('remove', 'opfs')).toBe(true);
    expect((await call('list')).map((m) => m.store)).toEqual(['cache-api']);
  });

  it('a key names a copy whatever the URL (signed URLs); without one, each URL is its own copy', async () => {
    const first = await call('load', { store: 'opfs', key: 'smollm2', partBytes: PART }, undefined, '?token=1');
    expect(first.cache).toMatchObject({ key: 'smollm2', status: 'stored' });
    requests = [];
    const second = await call('load', { store: 'opfs', key: 'smollm2' }, undefined, '?token=2');
    expect(requests).toEqual([]);
    expect(second.cache).toMatchObject({ key: 'smollm2', status: 'hit' });
    expect(second.tokens).toEqual(direct);
    expect(await call('list')).toEqual([{ store: 'opfs', key: 'smollm2', url: `${modelUrl}?token=1`, size: model.length, storedBytes: model.length, complete: true }]);
    expect((await call('load', { store: 'opfs' }, undefined, '?token=2')).cache).toMatchObject({ key: `${modelUrl}?token=2`, status: 'stored' });
    expect(await call('remove', undefined, 'smollm2')).toBe(true);
    expect((await call('list')).map((m) => m.key)).toEqual([`${modelUrl}?token=2`]);
  });
});

describe('README "Loading in the browser", word for word', () => {
  it('stores the demo model on the first run and reads it back with no request on the second', async () => {
    const logs: string[] = [];
    page.on('console', (message) => logs.push(message.text()));
    // A string, so that vitest's transform leaves the page's import() alone.
    const run = (n: number) => page.evaluate(`import('/readme.js?run=${n}').then(() => {})`);
    await run(1);
    expect(readme.demoRequests).toBe(1);
    await run(2);
    expect(readme.demoRequests, 'no request on the second run').toBe(1);
    const statuses = logs.filter((line) => /^(stored|hit)$/.test(line));
    expect(statuses).toEqual(['stored', 'hit']);
    // The engine the SDK fetched from beside itself: the relaxed module, as in Chrome.
    expect(logs.filter((line) => line === 'relaxed')).toEqual(['relaxed', 'relaxed']);
    const size = readme.demo.length;
    expect(logs).toContain(`${size} / ${size} bytes from the network`);
    expect(logs).toContain(`${size} / ${size} bytes from the cache`);
    const [stored] = await call('list');
    expect(stored).toMatchObject({ store: 'opfs', size, storedBytes: size, complete: true });
    expect(browser!.errors).toEqual([]);
  });
});
