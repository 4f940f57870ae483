/**
 * Browser page of cache.chromium.test.ts: loads /model.gguf through the SDK with the `cache` option, and reaches
 * into the stores' layout to damage a copy the way a crash or a full disk would. Returns plain data to the test.
 */
import { deleteCachedModel, listCachedModels, loadModel, type CacheOption, type CacheStoreName, type LoadOptions } from '../browser.js';

const MODEL_URL = new URL('/model.gguf', location.href).href;
/** The stores' names for their directory / cache (cache-store.ts). */
const STORE_DIR = 'recyclegpt-models';
const PROMPT = [1, 15, 27, 42, 7];

/** The engine's two modules by URL: the SDK fetches and compiles each once, and runs the relaxed one where it can. */
const wasm = { relaxed: new URL('/files/recyclegpt-relaxed.wasm', location.href), simd128: new URL('/files/recyclegpt.wasm', location.href) };

/** Progress as runs of one `from`: [from, first loaded, last loaded]. */
type Runs = [string, number, number][];

/** The highest `loaded` progress has reported on this page (the test watches it to close the tab mid-download). */
let loadedSoFar = 0;

/** Loads /model.gguf (with `query` appended, as a signed URL has) and generates greedily. */
async function load(cache?: CacheOption, abortAt?: number, query = '') {
  const runs: Runs = [];
  const controller = new AbortController();
  const options: LoadOptions = {
    wasm,
    contextLength: 64,
    cache,
    signal: controller.signal,
    onProgress({ loaded, from }) {
      loadedSoFar = loaded;
      const last = runs[runs.length - 1];
      if (last && last[0] === String(from)) last[2] = loaded;
      else runs.push([String(from), loaded, loaded]);
      if (abortAt !== undefined && loaded >= abortAt) controller.abort();
    },
  };
  try {
    const model = await loadModel(MODEL_URL + query, options);
    const { tokens } = await model.complete(PROMPT, { maxTokens: 8, temperature: 0 });
    model.dispose();
    return { tokens, cache: model.info.cache, runs, kernels: model.info.kernels };
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    return { error: { code, message }, runs };
  }
}

/** Two loads of the same URL at once. */
async function loadTwice(cache: CacheOption) {
  return Promise.all([load(cache), load(cache)]);
}

async function list() {
  return listCachedModels();
}

async function remove(store?: CacheStoreName, key = MODEL_URL) {
  return deleteCachedModel(key, { store });
}

/** Empties both stores and undoes `smallEstimate`. */
async function reset() {
  delete (navigator.storage as { estimate?: unknown }).estimate;
  await (await navigator.storage.getDirectory()).removeEntry(STORE_DIR, { recursive: true }).catch(() => {});
  await caches.delete(STORE_DIR);
  loadedSoFar = 0;
}

/** Makes navigator.storage.estimate say that only `free` bytes are left. */
function smallEstimate(free: number) {
  Object.defineProperty(navigator.storage, 'estimate', { configurable: true, value: async () => ({ quota: free, usage: 0 }) });
}

type Damage = 'truncate-part' | 'drop-part' | 'short-body' | 'garble-meta';

/** Damages the one stored copy: part 3 cut short, dropped, or (Cache API) short under its original length header; the record garbled. */
async function damage(store: CacheStoreName, how: Damage) {
  if (store === 'opfs') {
    const root = await (await navigator.storage.getDirectory()).getDirectoryHandle(STORE_DIR);
    const entries = (root as unknown as { values(): AsyncIterable<FileSystemDirectoryHandle> }).values();
    for await (const entry of entries) {
      const name = how === 'garble-meta' ? 'meta.json' : 'part-000002';
      if (how === 'drop-part') return entry.removeEntry(name);
      const writable = await (await entry.getFileHandle(name)).createWritable();
      await writable.write(how === 'garble-meta' ? '{"format": 1, "key": ' : new Uint8Array(100));
      return writable.close();
    }
    throw new Error('no stored copy in opfs');
  }
  const cache = await caches.open(STORE_DIR);
  for (const request of await cache.keys()) {
    if (how === 'garble-meta') {
      if (request.url.endsWith('/meta.json')) return cache.put(request, new Response('{"format": 1, "key": '));
      continue;
    }
    if (!request.url.endsWith('/part-000002')) continue;
    if (how === 'drop-part') return void (await cache.delete(request));
    // A short part says so in its length header (the store's check sees it); a short body under the original header
    // is found only while reading.
    const headers = how === 'short-body' ? (await cache.match(request))!.headers : { 'x-recyclegpt-part-bytes': '100' };
    return cache.put(request, new Response(new Uint8Array(100), { headers }));
  }
  throw new Error(`no part 3 in the cache-api store`);
}

Object.assign(globalThis, { harness: { load, loadTwice, list, remove, reset, smallEstimate, damage, loadedSoFar: () => loadedSoFar } });
