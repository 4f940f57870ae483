/**
 * The `cache` load option. A model downloaded over http(s) in a browser is written to OPFS or the Cache API while
 * it streams into the engine (one pass; JS holds a chunk and up to two 1 MiB writes), and later loads read it with no
 * request at all. A stored copy is trusted only when its record says complete and every part has its length. A
 * download cut off (network error, abort, closed tab) keeps its whole parts: the next load resumes with an HTTP
 * Range request when the server serves ranges of the same file (same length and ETag or Last-Modified), and
 * otherwise discards them and starts over.
 */
import { InvalidArgumentError, RecycleGPTError } from '../errors.js';
import { freeBytes, lockEntry, openStore, STORE_NAMES, type CacheStoreName, type Entry, type EntryMeta, type Store } from './cache-store.js';
import { CopyWriter } from './cache-writer.js';
import { describe, fetchModel, openResponse, throwIfAborted } from './http.js';
import type { OpenedSource } from './source.js';

export type { CacheStoreName };

export interface CacheOptions {
  /** 'opfs': the Origin Private File System; 'cache-api': the Cache API (`caches`). */
  store: CacheStoreName;
  /** Names the stored copy (default: the URL without its #fragment). Set it when the URL changes between loads of one file, as signed URLs do. */
  key?: string;
  /** Continue an interrupted download with an HTTP Range request when the server allows it and the file is unchanged (default true); false starts over. */
  resume?: boolean;
  /**
   * What to do when the file cannot be kept (no such store in this runtime, not enough quota, a storage error):
   * false (default) loads it without keeping it and says why in `model.info.cache.reason`; true fails the load
   * with CACHE_UNAVAILABLE.
   */
  required?: boolean;
  /** The copy is stored in parts of this many bytes (default 16 MiB, at least 64 KiB): a cut download resumes from its last whole part. */
  partBytes?: number;
}

export type CacheOption = CacheStoreName | CacheOptions;

/** What the `cache` option did on this load (`model.info.cache`). */
export interface CacheReport {
  store: CacheStoreName;
  key: string;
  /**
   * 'hit': read from the store, no request made; 'stored': downloaded and kept; 'resumed': an interrupted download
   * was finished with a Range request and kept; 'not-stored': loaded from the network without keeping it (see `reason`).
   */
  status: 'hit' | 'stored' | 'resumed' | 'not-stored';
  /** Why the file was not kept, and what became of an earlier copy that could not be used. */
  reason?: string;
  /** Bytes read from the store and over the network by this load. */
  cachedBytes: number;
  downloadedBytes: number;
}

/** A copy in a store (`listCachedModels`). */
export interface CachedModel {
  store: CacheStoreName;
  key: string;
  url: string;
  /** The file's size. */
  size: number;
  /** Bytes stored in whole parts: `size` when complete, less for an interrupted download. */
  storedBytes: number;
  /** Whether a load would read it from the store. */
  complete: boolean;
}

/** What a source opened with the cache option adds (see load.ts). */
export interface CachedSource {
  /** Where the byte at `position` comes from. */
  from(position: number): 'network' | 'cache';
  /** Called once the loader has what it needs: downloads the rest of the file into the store (a few padding bytes) and reports. */
  finish(): Promise<CacheReport>;
}

const DEFAULT_PART_BYTES = 16 << 20;
const MIN_PART_BYTES = 64 << 10;

interface Resolved {
  store: CacheStoreName;
  key: string;
  resume: boolean;
  required: boolean;
  partBytes: number;
}

/** The download (or read) a load makes. */
interface Plan {
  options: Resolved;
  url: URL;
  report: CacheReport;
  /** Where bytes are read from and written to; absent when the store cannot be used. */
  entry?: Entry;
  /** The file's record (as stored, or as it will be once complete). */
  meta?: EntryMeta;
  /** Leading parts read from the store: all of them on a hit. */
  storedParts: number;
  /** The network body for the bytes after them; absent on a hit. */
  response?: Response;
  /** The file's size, when known. */
  size?: number;
  /** Whether the network bytes are written to the store. */
  storing: boolean;
  /** For the report: what became of an earlier copy that could not be used, or why the file is not kept. */
  note?: string;
}

export async function openCachedUrl(url: URL, option: CacheOption, signal?: AbortSignal): Promise<OpenedSource> {
  const options = resolveOptions(option, url);
  const report: CacheReport = { store: options.store, key: options.key, status: 'not-stored', cachedBytes: 0, downloadedBytes: 0 };
  const store = await openStore(options.store);
  if (typeof store === 'string') {
    if (options.required) throw unavailable(store);
    const response = await fetchModel(url, signal);
    const { size } = openResponse(response, url.href);
    return cachingSource({ options, url, report, storedParts: 0, response, size, storing: false, note: store }, () => {});
  }
  const release = await lockEntry(options.store, options.key, signal).catch((error: unknown) => {
    throwIfAborted(signal);
    throw error;
  });
  try {
    return cachingSource(await planLoad(await store.entry(options.key), url, options, report, signal), release);
  } catch (error) {
    release();
    throw error;
  }
}

function resolveOptions(option: CacheOption, url: URL): Resolved {
  const options: CacheOptions = typeof option === 'string' ? { store: option } : option;
  if (typeof options !== 'object' || options === null || !STORE_NAMES.includes(options.store)) {
    const got = typeof options === 'object' && options !== null ? options.store : options;
    throw new InvalidArgumentError(`cache must be 'opfs', 'cache-api' or { store: 'opfs' | 'cache-api', ... }, got ${JSON.stringify(got)}`);
  }
  const { key = url.href, resume = true, required = false, partBytes = DEFAULT_PART_BYTES } = options;
  if (typeof key !== 'string' || key === '') throw new InvalidArgumentError(`cache.key must be a non-empty string, got ${JSON.stringify(key)}`);
  if (typeof resume !== 'boolean') throw new InvalidArgumentError(`cache.resume must be true or false, got ${JSON.stringify(resume)}`);
  if (typeof required !== 'boolean') throw new InvalidArgumentError(`cache.required must be true or false, got ${JSON.stringify(required)}`);
  if (!Number.isSafeInteger(partBytes) || partBytes < MIN_PART_BYTES) {
    throw new InvalidArgumentError(`cache.partBytes must be an integer of at least ${MIN_PART_BYTES} (64 KiB), got ${String(partBytes)}`);
  }
  return { store: options.store, key: cacheKey(key), resume, required, partBytes };
}

/** A URL names its copy without its #fragment, which never reaches the server; other keys are taken as given. */
function cacheKey(key: string | URL): string {
  try {
    const url = new URL(key);
    if (url.protocol === 'http:' || url.protocol === 'https:') {
      url.hash = '';
      return url.href;
    }
  } catch {
    // not a URL: a key of the caller's choosing
  }
  return String(key);
}

/** Hit, resume, or a new download, with what to say about an earlier copy that could not be used. */
async function planLoad(entry: Entry, url: URL, options: Resolved, report: CacheReport, signal: AbortSignal | undefined): Promise<Plan> {
  const plan = { options, url, report, entry };
  const meta = await entry.readMeta().catch(() => undefined);
  if (meta?.complete) {
    const problem = await missingPart(entry, meta);
    if (!problem) {
      report.status = 'hit';
      return { ...plan, meta, storedParts: partCount(meta), size: meta.size, storing: false };
    }
    await discard(entry);
    return startDownload({ ...plan, note: `the stored copy was incomplete (${problem}) and was deleted` }, await fetchModel(url, signal));
  }
  if (!meta) {
    await discard(entry); // parts without a readable record: nothing can say what they belong to
    return startDownload(plan, await fetchModel(url, signal));
  }
  const parts = await wholeParts(entry, meta);
  if (parts === partCount(meta)) {
    // Every part came under this record's validators: only the record's last write was missed. (Should the write
    // fail now, the parts are still whole for this load.)
    await entry.writeMeta({ ...meta, complete: true }).catch(() => {});
    report.status = 'hit';
    return { ...plan, meta, storedParts: parts, size: meta.size, storing: false };
  }
  const stored = Math.min(meta.size, parts * meta.partBytes);
  const cannot = !options.resume ? 'resume is false' : !resumable(meta) ? 'the server gave no strong ETag or Last-Modified to check that the file is unchanged' : undefined;
  if (cannot || parts === 0) {
    await discard(entry);
    const note = parts > 0 ? `an interrupted download (${mib(stored)} stored) was discarded: ${cannot}` : undefined;
    return startDownload({ ...plan, note }, await fetchModel(url, signal));
  }
  const response = await fetchModel(url, signal, { range: `bytes=${stored}-` });
  const mismatch = rangeMismatch(response, meta, stored);
  if (!mismatch) return { ...plan, meta, storedParts: parts, response, size: meta.size, storing: true };
  await discard(entry);
  const note = `an interrupted download (${mib(stored)} stored) was discarded: ${mismatch}`;
  if (response.status === 200) return startDownload({ ...plan, note }, response);
  await response.body?.cancel();
  return startDownload({ ...plan, note }, await fetchModel(url, signal));
}

/** A whole-file response: stored when its size is known, the quota allows and the record can be written. */
async function startDownload(plan: Omit<Plan, 'storedParts' | 'storing' | 'size'> & { entry: Entry }, response: Response): Promise<Plan> {
  const { options, url } = plan;
  const size = openResponse(response, url.href).size;
  let cannot: string | undefined;
  let meta: EntryMeta | undefined;
  if (size === undefined) {
    cannot = 'the server sent no Content-Length (or compressed the body), so a stored copy could not be checked for completeness';
  } else {
    const free = await freeBytes();
    if (free !== undefined && size > free) {
      cannot = `the model needs ${mib(size)} but this site may store only ${mib(free)} more (navigator.storage.estimate): delete cached models (deleteCachedModel) or other site data to make room`;
    } else {
      meta = {
        format: 1, key: options.key, url: url.href, size, partBytes: options.partBytes, complete: false,
        etag: strongEtag(response), lastModified: response.headers.get('last-modified') ?? undefined,
      };
      // Written first: a resumed download is checked against the validators it records.
      cannot = await plan.entry.writeMeta(meta).then(() => undefined, (error: unknown) => storeFailure(error, options.store, 0, size));
    }
  }
  if (cannot && options.required) {
    await response.body?.cancel();
    throw unavailable(cannot);
  }
  return { ...plan, meta, storedParts: 0, response, size, storing: !cannot, note: [plan.note, cannot].filter(Boolean).join('; ') || undefined };
}

/** Why a Range response does not continue the stored bytes, or undefined when it does. */
function rangeMismatch(response: Response, meta: EntryMeta, from: number): string | undefined {
  if (response.status === 200) return 'the server answered the Range request with the whole file (it does not serve ranges, or the file changed)';
  if (response.status !== 206) return `the server answered the Range request with HTTP ${response.status}`;
  const range = response.headers.get('content-range');
  const [, start, end, total] = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(range ?? '') ?? [];
  if (Number(start) !== from || Number(end) !== meta.size - 1 || Number(total) !== meta.size) {
    return `the server's Content-Range (${range ?? 'none, or hidden from this page by CORS'}) is not bytes ${from}-${meta.size - 1}/${meta.size}`;
  }
  const encoding = response.headers.get('content-encoding');
  if (encoding && encoding !== 'identity') return `the server compressed the range (${encoding})`;
  if (meta.etag) {
    const etag = response.headers.get('etag');
    return etag === meta.etag ? undefined : `the file on the server changed (ETag ${etag ?? 'absent, or hidden by CORS'}, stored ${meta.etag})`;
  }
  const modified = response.headers.get('last-modified');
  return modified === meta.lastModified ? undefined : `the file on the server changed (Last-Modified ${modified ?? 'absent'}, stored ${meta.lastModified})`;
}

/**
 * The file's bytes: stored parts first, then the network body, whose bytes also go to the store (CopyWriter) while
 * it is kept. Whatever ends the stream (its end, a cancel, an error), only whole parts remain, and the record is
 * marked complete only after the last one.
 */
function cachingSource(plan: Plan, release: () => void): OpenedSource {
  const { options, url, report, entry, meta } = plan;
  const network = plan.response?.body?.getReader();
  /** Writes the network bytes while they are being stored. */
  let copy = plan.storing ? new CopyWriter(entry!, meta!, plan.storedParts) : undefined;
  let committed = false;
  /** Bytes of the file handed on. */
  let position = 0;
  let cancelled = false;
  /** Why a download that was being stored is not kept. */
  let notStored: string | undefined = 'the download did not finish';
  const cachedEnd = plan.response ? Math.min(plan.size ?? 0, plan.storedParts * (meta?.partBytes ?? 0)) : Infinity;

  const store = async (chunk: Uint8Array) => {
    try {
      await copy!.write(chunk, position);
      committed = copy!.committed;
    } catch (error) {
      await copy!.abort();
      copy = undefined;
      await discard(entry);
      const reason = storeFailure(error, options.store, position, meta!.size);
      if (options.required) throw unavailable(reason, error);
      notStored = reason;
    }
  };

  async function* storedParts(): AsyncGenerator<Uint8Array> {
    for (let index = 0; index < plan.storedParts; index++) {
      try {
        for await (const chunk of readPart(entry!, meta!, index)) {
          report.cachedBytes += chunk.length;
          position += chunk.length;
          yield chunk;
        }
      } catch (error) {
        await discard(entry);
        throw new RecycleGPTError(
          'SOURCE_UNREADABLE',
          `the copy of ${options.key} in ${options.store} is damaged (${describe(error)}); it was deleted: load the model again to download it`,
          { cause: error },
        );
      }
    }
  }

  async function* bytes(): AsyncGenerator<Uint8Array> {
    try {
      yield* storedParts();
      if (!network) return;
      for (;;) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await network.read();
        } catch (error) {
          throw brokenOff(error);
        }
        if (cancelled) return;
        if (result.done) break;
        const chunk = result.value;
        report.downloadedBytes += chunk.length;
        if (copy) await store(chunk);
        position += chunk.length;
        yield chunk;
      }
      if (copy && !committed) {
        notStored = `the server sent ${position} of the ${meta!.size} bytes it announced; the whole parts are kept for the next load to resume`;
      }
    } finally {
      await settle();
    }
  }

  const brokenOff = (error: unknown) => {
    const kept = copy && resumable(meta!) ? copy.kept : 0;
    const next = kept > 0
      ? `the ${mib(Math.min(meta!.size, kept * meta!.partBytes))} stored so far in ${options.store} are kept: loading again resumes from there if the server serves Range requests`
      : 'loading again starts over';
    return new RecycleGPTError('SOURCE_UNREADABLE', `the download of ${url.href} broke off after ${mib(position)}: ${describe(error)}; ${next}`, { cause: error });
  };

  /** Once, however the stream ends: drop a part being written, and an entry with nothing worth resuming; unlock. */
  let settled: Promise<void> | undefined;
  const settle = () =>
    (settled ??= (async () => {
      await copy?.abort();
      if (copy && !committed && (copy.kept === 0 || !resumable(meta!))) await discard(entry);
      release();
    })());

  const chunks = bytes();
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel() {
        cancelled = true;
        await network?.cancel().catch(() => {});
        await chunks.return(undefined);
        await settle();
      },
    },
    // No read-ahead: the loader's reads drive the download and the writes.
    { highWaterMark: 0 },
  );

  const name = plan.response ? url.href : `the copy of ${url.href} in ${options.store}`;
  return {
    stream,
    size: plan.size,
    name,
    cache: {
      from: (at) => (cachedEnd > 0 && at <= cachedEnd ? 'cache' : 'network'),
      async finish() {
        try {
          while (!(await chunks.next()).done);
        } catch (error) {
          if (error instanceof RecycleGPTError && error.code === 'CACHE_UNAVAILABLE') throw error;
          notStored = `the file's last bytes could not be downloaded (${describe(error)})`;
        }
        if (committed) report.status = plan.storedParts > 0 ? 'resumed' : 'stored';
        const failed = plan.storing && !committed ? notStored : undefined;
        const reason = [plan.note, failed].filter(Boolean).join('; ');
        return { ...report, ...(reason && { reason }) };
      },
    },
  };
}

async function* readPart(entry: Entry, meta: EntryMeta, index: number): AsyncGenerator<Uint8Array> {
  const expected = partLength(meta, index);
  const reader = (await entry.readPart(index)).getReader();
  let got = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      got += value.length;
      if (got > expected) break;
      yield value;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  if (got !== expected) throw new Error(`part ${index + 1} of ${partCount(meta)} holds ${got > expected ? 'more than ' : ''}${got} bytes, not ${expected}`);
}

const partCount = (meta: EntryMeta): number => Math.ceil(meta.size / meta.partBytes);
const partLength = (meta: EntryMeta, index: number): number => Math.min(meta.partBytes, meta.size - index * meta.partBytes);
const resumable = (meta: EntryMeta): boolean => meta.etag !== undefined || meta.lastModified !== undefined;

/** How many leading parts are whole. */
async function wholeParts(entry: Entry, meta: EntryMeta): Promise<number> {
  let index = 0;
  while (index < partCount(meta) && (await entry.partLength(index).catch(() => undefined)) === partLength(meta, index)) index++;
  return index;
}

async function missingPart(entry: Entry, meta: EntryMeta): Promise<string | undefined> {
  const whole = await wholeParts(entry, meta);
  if (whole === partCount(meta)) return undefined;
  const length = await entry.partLength(whole).catch(() => undefined);
  return `part ${whole + 1} of ${partCount(meta)} ${length === undefined ? 'is missing' : `holds ${length} bytes, not ${partLength(meta, whole)}`}`;
}

/** Removal is best effort: what cannot be removed is never trusted either, as it has no complete record. */
async function discard(entry: Entry | undefined): Promise<void> {
  await entry?.remove().catch(() => {});
}

/** Only a strong ETag says that two responses have the same bytes (RFC 9110 §8.8.3). */
function strongEtag(response: Response): string | undefined {
  const etag = response.headers.get('etag');
  return etag && !etag.startsWith('W/') ? etag : undefined;
}

function storeFailure(error: unknown, store: CacheStoreName, stored: number, size: number): string {
  if ((error as { name?: string })?.name === 'QuotaExceededError') {
    return `this site's storage quota ran out after ${mib(stored)} of the model's ${mib(size)} went into ${store}: delete cached models (deleteCachedModel) or other site data to make room`;
  }
  return `storing the model in ${store} failed after ${mib(stored)}: ${describe(error)}`;
}

function unavailable(reason: string, cause?: unknown): RecycleGPTError {
  return new RecycleGPTError('CACHE_UNAVAILABLE', `${reason}; the model was not loaded because the cache option has required: true (without it, the model loads without being kept)`, { cause });
}

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

/** Every copy in the stores (both, or the one named): complete ones and interrupted downloads. */
export async function listCachedModels(options: { store?: CacheStoreName } = {}): Promise<CachedModel[]> {
  const models: CachedModel[] = [];
  for (const store of await storesFor(options.store)) {
    for (const meta of await store.list()) {
      const parts = await wholeParts(await store.entry(meta.key), meta);
      const complete = meta.complete && parts === partCount(meta);
      models.push({ store: store.name, key: meta.key, url: meta.url, size: meta.size, storedBytes: Math.min(meta.size, parts * meta.partBytes), complete });
    }
  }
  return models;
}

/**
 * Deletes the copy named by `key` (the model's URL, or the `cache.key` it was loaded with) from the stores (both,
 * or the one named), waiting for a load that is using it. True when there was a copy, complete or not.
 */
export async function deleteCachedModel(key: string | URL, options: { store?: CacheStoreName } = {}): Promise<boolean> {
  const name = cacheKey(key);
  let found = false;
  for (const store of await storesFor(options.store)) {
    const release = await lockEntry(store.name, name, undefined);
    try {
      const entry = await store.entry(name);
      if (await entry.readMeta()) found = true;
      await entry.remove();
    } finally {
      release();
    }
  }
  return found;
}

/** The named store (CACHE_UNAVAILABLE, with why, when it is missing here), or every store this runtime has. */
async function storesFor(name: CacheStoreName | undefined): Promise<Store[]> {
  if (name !== undefined && !STORE_NAMES.includes(name)) throw new InvalidArgumentError(`store must be 'opfs' or 'cache-api', got ${JSON.stringify(name)}`);
  const stores: Store[] = [];
  for (const candidate of name ? [name] : STORE_NAMES) {
    const store = await openStore(candidate);
    if (typeof store !== 'string') stores.push(store);
    else if (name) throw new RecycleGPTError('CACHE_UNAVAILABLE', `the ${name} store cannot be used here: ${store}`);
  }
  return stores;
}
