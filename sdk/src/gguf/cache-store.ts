/**
 * Where a browser keeps downloaded models: one entry per key, in the Origin Private File System or the Cache API.
 * An entry is a metadata record plus the file cut into parts. Each part becomes visible only once whole (a closed
 * OPFS writable, a settled cache.put), so a download cut off anywhere leaves whole parts and nothing else that
 * counts; the record says `complete` only after the last part is in. cache.ts decides what to trust.
 */
import { describe } from './http.js';

export type CacheStoreName = 'opfs' | 'cache-api';

export interface EntryMeta {
  format: 1;
  key: string;
  /** Where the file was downloaded from. */
  url: string;
  /** The server's Content-Length: what a complete copy holds. */
  size: number;
  partBytes: number;
  /** A strong ETag, and Last-Modified: what a resumed download must match. Neither: the copy cannot be resumed. */
  etag?: string;
  lastModified?: string;
  complete: boolean;
}

export interface PartWriter {
  write(chunk: Uint8Array): Promise<void>;
  /** Makes the part visible, whole. */
  close(): Promise<void>;
  /** Drops what was written. */
  abort(): Promise<void>;
}

export interface Entry {
  /** The record, or undefined when there is none or it is unreadable. */
  readMeta(): Promise<EntryMeta | undefined>;
  writeMeta(meta: EntryMeta): Promise<void>;
  /** Bytes part `index` holds, or undefined when it is missing. */
  partLength(index: number): Promise<number | undefined>;
  readPart(index: number): Promise<ReadableStream<Uint8Array>>;
  writePart(index: number, length: number): Promise<PartWriter>;
  remove(): Promise<void>;
}

export interface Store {
  readonly name: CacheStoreName;
  entry(key: string): Promise<Entry>;
  /** Every entry with a readable record. */
  list(): Promise<EntryMeta[]>;
}

export const STORE_NAMES: readonly CacheStoreName[] = ['opfs', 'cache-api'];
/** The OPFS directory and the Cache API cache that hold the entries. */
const STORE_DIR = 'recyclegpt-models';
/** Cache API keys must be http(s) URLs; this host never resolves (.invalid), so nothing is ever fetched from it. */
const CACHE_URL = 'https://recyclegpt-models.invalid/';
const META = 'meta.json';
/** Cache API parts carry their length, as OPFS files do, so that an entry can be checked without reading it. */
const PART_BYTES_HEADER = 'x-recyclegpt-part-bytes';

/** The store, or why it cannot be used in this runtime. */
export async function openStore(name: CacheStoreName): Promise<Store | string> {
  if (globalThis.navigator?.userAgent === 'Cloudflare-Workers') {
    return 'in Cloudflare Workers the Cache API is a per-data-center HTTP cache, not a place to keep models: keep the file in R2 and load `await env.BUCKET.get(key)`';
  }
  if (name === 'opfs') {
    if (typeof globalThis.navigator?.storage?.getDirectory !== 'function') {
      return 'this runtime has no Origin Private File System (navigator.storage.getDirectory): browsers have it, on https or localhost pages';
    }
    if (typeof FileSystemFileHandle === 'undefined' || typeof FileSystemFileHandle.prototype.createWritable !== 'function') {
      return "this browser cannot write OPFS files from a page (no createWritable, as in Safari before 26): use the 'cache-api' store";
    }
    try {
      return new OpfsStore(await (await navigator.storage.getDirectory()).getDirectoryHandle(STORE_DIR, { create: true }));
    } catch (error) {
      return `the Origin Private File System refused access (${describe(error)}), as private windows of some browsers do`;
    }
  }
  if (typeof globalThis.caches?.open !== 'function') return 'this runtime has no Cache API (caches): browsers have it, on https or localhost pages';
  try {
    return new CacheApiStore(await caches.open(STORE_DIR));
  } catch (error) {
    return `the Cache API refused access (${describe(error)})`;
  }
}

/** Bytes the site may still store, when the browser says (navigator.storage.estimate). */
export async function freeBytes(): Promise<number | undefined> {
  try {
    const { quota, usage } = await navigator.storage.estimate();
    return quota === undefined || usage === undefined ? undefined : Math.max(0, quota - usage);
  } catch {
    return undefined;
  }
}

/**
 * Holds the key's lock (Web Locks, across this origin's tabs and workers) until the returned release is called,
 * so that two loads never write one entry at once, nor read an entry being deleted. Without Web Locks, no lock.
 */
export async function lockEntry(store: CacheStoreName, key: string, signal: AbortSignal | undefined): Promise<() => void> {
  const locks = globalThis.navigator?.locks;
  if (!locks) return () => {};
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  await new Promise<void>((granted, refused) => {
    locks.request(`recyclegpt-models:${store}:${key}`, { signal }, () => (granted(), held)).catch(refused);
  });
  return release;
}

/** Entries are named by a hash of their key: keys are URLs, which file names cannot hold. */
async function entryId(key: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(key)));
  return Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('');
}

const partName = (index: number): string => `part-${String(index).padStart(6, '0')}`;

function parseMeta(text: string): EntryMeta | undefined {
  try {
    const meta = JSON.parse(text) as EntryMeta;
    const valid =
      meta.format === 1 && typeof meta.key === 'string' && typeof meta.url === 'string' && Number.isSafeInteger(meta.size) && meta.size >= 0 &&
      Number.isSafeInteger(meta.partBytes) && meta.partBytes > 0 && typeof meta.complete === 'boolean';
    return valid ? meta : undefined;
  } catch {
    return undefined;
  }
}

const isNotFound = (error: unknown): boolean => (error as { name?: string })?.name === 'NotFoundError';

class OpfsStore implements Store {
  readonly name = 'opfs';
  constructor(private readonly root: FileSystemDirectoryHandle) {}

  async entry(key: string): Promise<Entry> {
    return new OpfsEntry(this.root, await entryId(key));
  }

  async list(): Promise<EntryMeta[]> {
    const metas: EntryMeta[] = [];
    // entries() is in the DOM.AsyncIterable lib, which the SDK does not compile against.
    const children = (this.root as unknown as { keys(): AsyncIterable<string> }).keys();
    for await (const id of children) {
      const meta = await new OpfsEntry(this.root, id).readMeta();
      if (meta) metas.push(meta);
    }
    return metas;
  }
}

class OpfsEntry implements Entry {
  constructor(
    private readonly root: FileSystemDirectoryHandle,
    private readonly id: string,
  ) {}

  async readMeta(): Promise<EntryMeta | undefined> {
    const file = await this.file(META);
    return file && parseMeta(await (await file.getFile()).text());
  }

  async writeMeta(meta: EntryMeta): Promise<void> {
    const writable = await (await this.file(META, true))!.createWritable();
    await writable.write(JSON.stringify(meta));
    await writable.close();
  }

  async partLength(index: number): Promise<number | undefined> {
    return (await (await this.file(partName(index)))?.getFile())?.size;
  }

  async readPart(index: number): Promise<ReadableStream<Uint8Array>> {
    const file = await this.file(partName(index));
    if (!file) throw new Error(`${partName(index)} is missing`);
    return (await file.getFile()).stream();
  }

  async writePart(index: number): Promise<PartWriter> {
    // Writes go to a swap file that close() moves into place: until then the part reads as it was (empty or absent).
    const writable = await (await this.file(partName(index), true))!.createWritable();
    // Network and file chunks are never views of a SharedArrayBuffer.
    return { write: (chunk) => writable.write(chunk as Uint8Array<ArrayBuffer>), close: () => writable.close(), abort: () => writable.abort() };
  }

  async remove(): Promise<void> {
    try {
      await this.root.removeEntry(this.id, { recursive: true });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  private async file(name: string, create = false): Promise<FileSystemFileHandle | undefined> {
    try {
      return await (await this.root.getDirectoryHandle(this.id, { create })).getFileHandle(name, { create });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}

class CacheApiStore implements Store {
  readonly name = 'cache-api';
  constructor(private readonly cache: Cache) {}

  async entry(key: string): Promise<Entry> {
    return new CacheApiEntry(this.cache, `${CACHE_URL}${await entryId(key)}/`);
  }

  async list(): Promise<EntryMeta[]> {
    const metas: EntryMeta[] = [];
    for (const request of await this.cache.keys()) {
      if (!request.url.endsWith(`/${META}`)) continue;
      const meta = await new CacheApiEntry(this.cache, request.url.slice(0, -META.length)).readMeta();
      if (meta) metas.push(meta);
    }
    return metas;
  }
}

class CacheApiEntry implements Entry {
  constructor(
    private readonly cache: Cache,
    private readonly base: string,
  ) {}

  async readMeta(): Promise<EntryMeta | undefined> {
    const response = await this.cache.match(this.base + META);
    return response && parseMeta(await response.text());
  }

  async writeMeta(meta: EntryMeta): Promise<void> {
    await this.cache.put(this.base + META, new Response(JSON.stringify(meta), { headers: { 'content-type': 'application/json' } }));
  }

  async partLength(index: number): Promise<number | undefined> {
    const response = await this.cache.match(this.base + partName(index));
    if (!response) return undefined;
    await response.body?.cancel();
    const length = Number(response.headers.get(PART_BYTES_HEADER));
    return Number.isSafeInteger(length) ? length : undefined;
  }

  async readPart(index: number): Promise<ReadableStream<Uint8Array>> {
    const body = (await this.cache.match(this.base + partName(index)))?.body;
    if (!body) throw new Error(`${partName(index)} is missing`);
    return body;
  }

  /**
   * cache.put stores a streamed body only once it has read all of it, and nothing if the body errors. Each write
   * waits until the put has taken the chunk before it, so chunks do not pile up in memory.
   */
  async writePart(index: number, length: number): Promise<PartWriter> {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let wanted: (() => void) | undefined;
    const body = new ReadableStream<Uint8Array>(
      {
        start: (c) => void (controller = c),
        pull: () => wanted?.(),
      },
      { highWaterMark: 1 },
    );
    let failure: { error: unknown } | undefined;
    const put = this.cache.put(this.base + partName(index), new Response(body, { headers: { [PART_BYTES_HEADER]: String(length) } }));
    const settled = put.then(
      () => {},
      (error: unknown) => void (failure = { error }),
    );
    const check = () => {
      if (failure) throw failure.error;
    };
    return {
      async write(chunk) {
        check();
        try {
          controller.enqueue(chunk);
        } catch (error) {
          // The put gave up on the body (quota, storage error): say why it did.
          await settled;
          check();
          throw error;
        }
        if (controller.desiredSize! <= 0) await Promise.race([new Promise<void>((resolve) => (wanted = resolve)), settled]);
        check();
      },
      async close() {
        controller.close();
        await settled;
        check();
      },
      async abort() {
        controller.error(new Error('part abandoned'));
        await settled;
      },
    };
  }

  async remove(): Promise<void> {
    for (const request of await this.cache.keys()) {
      if (request.url.startsWith(this.base)) await this.cache.delete(request);
    }
  }
}
