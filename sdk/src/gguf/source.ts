/**
 * Turns every supported model source into one byte stream (plus its size and a name for messages).
 * Files (paths, file: URLs) are read by the Node entry's file access (../node-files.ts), so this module
 * has no Node import and loads in workerd and browsers too.
 */
import { InvalidArgumentError, RecycleGPTError } from '../errors.js';
import { runtime } from '../runtime.js';
import { openCachedUrl, type CacheOption, type CachedSource } from './cache.js';
import { describe, fetchModel, openResponse, throwIfAborted } from './http.js';

export { describe, throwIfAborted };

/** An R2 object body (`await env.BUCKET.get(key)`), duck-typed so the SDK does not depend on workers types. */
export interface R2ObjectBodyLike {
  body: ReadableStream<Uint8Array>;
  size: number;
  key?: string;
}

export type ModelSource =
  | string
  | URL
  | Response
  | ReadableStream<Uint8Array>
  | ArrayBuffer
  | ArrayBufferView
  | Blob
  | R2ObjectBodyLike;

export interface OpenedSource {
  stream: ReadableStream<Uint8Array>;
  /** Total bytes, when the source knows it. */
  size?: number;
  /** For messages: a file name, URL or kind of source. */
  name: string;
  /** Set when the bytes pass through a browser store (the `cache` option). */
  cache?: CachedSource;
}

export interface OpenSourceOptions {
  signal?: AbortSignal;
  /** Keep an http(s) download in a browser store, or read it from there (cache.ts). */
  cache?: CacheOption;
}

export async function openSource(source: ModelSource, opts: OpenSourceOptions = {}): Promise<OpenedSource> {
  throwIfAborted(opts.signal);
  const url = typeof source === 'string' && /^(https?|file):/i.test(source) ? parseUrl(source) : source instanceof URL ? source : undefined;
  if (opts.cache !== undefined) {
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new InvalidArgumentError('the cache option keeps a download: it needs an http(s) URL as the model source (this source is already local)');
    }
    return openCachedUrl(url, opts.cache, opts.signal);
  }
  if (url) return openUrl(url, opts.signal);
  if (typeof source === 'string') return openFile(source);
  if (typeof Response !== 'undefined' && source instanceof Response) return openResponse(source, source.url || 'response');
  if (isReadableStream(source)) return { stream: source, name: 'stream' };
  if (source instanceof ArrayBuffer) return bytesSource(new Uint8Array(source), 'ArrayBuffer');
  if (ArrayBuffer.isView(source)) {
    return bytesSource(new Uint8Array(source.buffer, source.byteOffset, source.byteLength), source.constructor.name);
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    const name = typeof (source as File).name === 'string' ? (source as File).name : 'blob';
    return { stream: source.stream(), size: source.size, name };
  }
  if (isR2Body(source)) {
    const name = typeof source.key === 'string' ? `r2://${source.key}` : 'R2 object';
    return { stream: source.body, size: source.size, name };
  }
  throw new InvalidArgumentError(
    'unsupported model source: pass a file path, an http(s) or file: URL, a Response, a ReadableStream, an ArrayBuffer or typed array, a Blob, or an R2 object body',
  );
}

function parseUrl(text: string): URL {
  try {
    return new URL(text);
  } catch {
    throw new InvalidArgumentError(`"${text}" is not a valid URL`);
  }
}

function bytesSource(bytes: Uint8Array, name: string): OpenedSource {
  // One chunk that views the caller's memory: no copy of the weights is made here.
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
  return { stream, size: bytes.length, name };
}

async function openUrl(url: URL, signal: AbortSignal | undefined): Promise<OpenedSource> {
  if (url.protocol === 'file:') return openFile(url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`unsupported URL scheme "${url.protocol}" for a model; use http(s): or file:`);
  }
  return openResponse(await fetchModel(url, signal), url.href);
}

async function openFile(file: string | URL): Promise<OpenedSource> {
  if (!runtime.files) {
    throw new RecycleGPTError(
      'SOURCE_UNREADABLE',
      `cannot read "${String(file)}": files need Node.js (the package's Node entry); here pass a URL, Response, ReadableStream, ArrayBuffer, Blob or R2 object body`,
    );
  }
  return runtime.files.open(file);
}

/** Duck-typed: streams from another realm or polyfill work as well. */
function isReadableStream(value: unknown): value is ReadableStream<Uint8Array> {
  return typeof (value as ReadableStream | null)?.getReader === 'function';
}

function isR2Body(value: unknown): value is R2ObjectBodyLike {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<R2ObjectBodyLike>;
  return typeof candidate.size === 'number' && typeof (candidate.body as ReadableStream | undefined)?.getReader === 'function';
}
