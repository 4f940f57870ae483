/**
 * Turns every supported model source into one byte stream (plus its size and a name for messages).
 * Files (paths, file: URLs) are read by the Node entry's file access (../node-files.ts), so this module
 * has no Node import and loads in workerd and browsers too.
 */
import { InvalidArgumentError, RecycleGPTError } from '../errors.js';
import { runtime } from '../runtime.js';

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
}

export async function openSource(source: ModelSource, opts: { signal?: AbortSignal } = {}): Promise<OpenedSource> {
  throwIfAborted(opts.signal);
  if (typeof source === 'string') {
    return /^(https?|file):/i.test(source) ? openUrl(parseUrl(source), opts.signal) : openFile(source);
  }
  if (source instanceof URL) return openUrl(source, opts.signal);
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
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (error) {
    throwIfAborted(signal);
    throw new RecycleGPTError('SOURCE_UNREADABLE', `could not fetch the model from ${url.href}: ${describe(error)}; check the URL and the network`, { cause: error });
  }
  return openResponse(response, url.href);
}

function openResponse(response: Response, name: string): OpenedSource {
  if (!response.ok) {
    throw new RecycleGPTError('SOURCE_UNREADABLE', `fetching the model from ${name} failed with HTTP ${response.status} ${response.statusText}`.trimEnd());
  }
  if (response.bodyUsed) throw new RecycleGPTError('SOURCE_UNREADABLE', `the response body of ${name} was already read; pass a fresh Response`);
  if (!response.body) throw new RecycleGPTError('SOURCE_UNREADABLE', `the response from ${name} has no body`);
  return { stream: response.body, size: contentLength(response), name };
}

/** Content-Length is the body's size only when no content coding (gzip, br) sits in between. */
function contentLength(response: Response): number | undefined {
  const encoding = response.headers.get('content-encoding');
  if (encoding && encoding !== 'identity') return undefined;
  const header = response.headers.get('content-length');
  if (header === null || !/^\d+$/.test(header)) return undefined;
  const size = Number(header);
  return Number.isSafeInteger(size) ? size : undefined;
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

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new RecycleGPTError('ABORTED', 'loading the model was aborted', { cause: signal.reason });
}
