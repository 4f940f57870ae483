/**
 * The `cache` load option where there is no store to keep the file in (Node here; a Cloudflare Worker stubbed by its
 * user agent): the model loads without it and `info.cache` says why, or the load fails with `required: true`. Bad
 * options and sources that are not downloads are typed errors. The stores themselves are tested in chromium
 * (cache.chromium.test.ts).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeTestModel, STANDARD_SPECS } from '../../../test/fixtures/models.js';
import { RecycleGPTError } from '../errors.js';
import { loadModel } from '../model.js';
import type { LoadOptions, LoadProgress } from '../types.js';
import { deleteCachedModel, listCachedModels } from './cache.js';

let path: string;
let file: Uint8Array;
let server: Server;
let url: string;
let requests = 0;

beforeAll(async () => {
  path = await makeTestModel(STANDARD_SPECS.f16_llama_tied!);
  file = readFileSync(path);
  server = createServer((req, res) => {
    requests++;
    res.writeHead(200, { 'content-length': file.length, etag: '"v1"' }).end(file);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.gguf`;
});

afterAll(() => new Promise((resolve) => server.close(resolve)));

afterEach(() => {
  vi.unstubAllGlobals();
});

async function greedy(options: LoadOptions = {}, source: string = url) {
  const progress: LoadProgress[] = [];
  const model = await loadModel(source, { contextLength: 32, onProgress: (p) => progress.push(p), ...options });
  const { tokens } = await model.complete([1, 5, 9], { maxTokens: 6, temperature: 0 });
  model.dispose();
  return { tokens, info: model.info, progress };
}

async function failure(promise: Promise<unknown>): Promise<RecycleGPTError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RecycleGPTError);
  return error as RecycleGPTError;
}

describe('the cache option without a store', () => {
  it('in Node: OPFS and the Cache API are missing, so the model loads from the network and info.cache says why', async () => {
    const plain = await greedy();
    expect(plain.info.cache).toBeUndefined();
    expect(plain.progress.every((p) => p.from === undefined)).toBe(true);
    const reasons = {
      opfs: 'this runtime has no Origin Private File System (navigator.storage.getDirectory): browsers have it, on https or localhost pages',
      'cache-api': 'this runtime has no Cache API (caches): browsers have it, on https or localhost pages',
    };
    for (const store of ['opfs', 'cache-api'] as const) {
      const loaded = await greedy({ cache: store });
      expect(loaded.tokens).toEqual(plain.tokens);
      expect(loaded.info.cache).toEqual({ store, key: url, status: 'not-stored', reason: reasons[store], cachedBytes: 0, downloadedBytes: file.length });
      expect(loaded.progress.length).toBeGreaterThan(10);
      expect(loaded.progress.every((p) => p.from === 'network')).toBe(true);
      expect(loaded.progress.at(-1)).toEqual({ loaded: file.length, total: file.length, phase: 'model', from: 'network' });
    }
  });

  it('with required: true the load fails with CACHE_UNAVAILABLE before downloading anything', async () => {
    requests = 0;
    const error = await failure(greedy({ cache: { store: 'opfs', required: true } }));
    expect(error.code).toBe('CACHE_UNAVAILABLE');
    expect(error.message).toBe(
      'this runtime has no Origin Private File System (navigator.storage.getDirectory): browsers have it, on https or localhost pages; ' +
        'the model was not loaded because the cache option has required: true (without it, the model loads without being kept)',
    );
    expect(requests).toBe(0);
  });

  it('in a Cloudflare Worker the option is ignored, and the reason points to R2', async () => {
    vi.stubGlobal('navigator', { userAgent: 'Cloudflare-Workers' });
    const loaded = await greedy({ cache: 'cache-api' });
    expect(loaded.info.cache?.reason).toBe(
      'in Cloudflare Workers the Cache API is a per-data-center HTTP cache, not a place to keep models: keep the file in R2 and load `await env.BUCKET.get(key)`',
    );
  });

  it('listing finds nothing, deleting deletes nothing, and naming a missing store is CACHE_UNAVAILABLE', async () => {
    expect(await listCachedModels()).toEqual([]);
    expect(await deleteCachedModel(url)).toBe(false);
    const error = await failure(listCachedModels({ store: 'opfs' }));
    expect(error.code).toBe('CACHE_UNAVAILABLE');
    expect(error.message).toMatch(/^the opfs store cannot be used here: this runtime has no Origin Private File System/);
  });
});

describe('the cache option refuses what it cannot mean', () => {
  it('a source that is not an http(s) URL is INVALID_ARGUMENT', async () => {
    for (const source of [path, `file://${path}`]) {
      const error = await failure(greedy({ cache: 'opfs' }, source));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toBe('the cache option keeps a download: it needs an http(s) URL as the model source (this source is already local)');
    }
    const bytes = await failure(loadModel(file, { cache: 'opfs' }));
    expect(bytes.code).toBe('INVALID_ARGUMENT');
  });

  it('bad options are INVALID_ARGUMENT, naming the option and the value', async () => {
    const cases: [unknown, string][] = [
      ['disk', `cache must be 'opfs', 'cache-api' or { store: 'opfs' | 'cache-api', ... }, got "disk"`],
      [{ store: 'idb' }, `cache must be 'opfs', 'cache-api' or { store: 'opfs' | 'cache-api', ... }, got "idb"`],
      [{ store: 'opfs', key: '' }, 'cache.key must be a non-empty string, got ""'],
      [{ store: 'opfs', resume: 'yes' }, 'cache.resume must be true or false, got "yes"'],
      [{ store: 'opfs', required: 1 }, 'cache.required must be true or false, got 1'],
      [{ store: 'opfs', partBytes: 4096 }, 'cache.partBytes must be an integer of at least 65536 (64 KiB), got 4096'],
    ];
    requests = 0;
    for (const [cache, message] of cases) {
      const error = await failure(loadModel(url, { cache: cache as LoadOptions['cache'] }));
      expect([error.code, error.message]).toEqual(['INVALID_ARGUMENT', message]);
    }
    expect(requests).toBe(0);
  });
});
