import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGGUF } from '../../../test/fixtures/gguf-writer.js';
import { GGUFError, InvalidArgumentError, RecycleGPTError } from '../errors.js';
import { loadGGUF, readGGUFHeader, type LoadProgress, type TensorSink } from './load.js';
import { parseGGUF } from './parse.js';
import type { ModelSource } from './source.js';
import type { GGUFHeader, GGUFTensorInfo } from './types.js';

function values(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed));
}

/** A small model with every supported type, 64-byte alignment and a header larger than the loader's first read. */
const model = writeGGUF({
  alignment: 64,
  metadata: [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: Array.from({ length: 9000 }, (_, i) => `token-${i}`) },
    { key: 'tokenizer.ggml.scores', type: 'array', itemType: 'f32', value: values(9000, 1) },
  ],
  tensors: [
    { name: 'token_embd.weight', dims: [64, 40], type: 2, data: values(64 * 40, 2) },
    { name: 'output_norm.weight', dims: [64], type: 0, data: values(64, 3) },
    { name: 'blk.0.attn_q.weight', dims: [64, 64], type: 8, data: values(64 * 64, 4) },
    { name: 'blk.0.ffn_up.weight', dims: [64, 3], type: 1, data: values(64 * 3, 5) },
  ],
}) as Uint8Array<ArrayBuffer>; // the writer returns a plain (non-shared) buffer; Blob and Response want to know
const modelHeader = parseGGUF(model);
/** The model followed by 1 MiB of trailing bytes: still valid, and longer than the loader's header reads. */
const padded = new Uint8Array(model.length + (1 << 20));
padded.set(model);
const tiny = writeGGUF({ metadata: [], tensors: [{ name: 'w', dims: [32, 3], type: 8, data: values(96, 6) }] });

function bytesOf(file: Uint8Array, header: GGUFHeader, tensor: GGUFTensorInfo): Uint8Array {
  const start = header.dataOffset + tensor.offset;
  return file.subarray(start, start + tensor.byteSize);
}

/** Sink that keeps each tensor's bytes, optionally skipping some. */
function collectingSink(skip: (name: string) => boolean = () => false) {
  const tensors = new Map<string, Uint8Array>();
  const calls: string[] = [];
  const sink: TensorSink = {
    begin: () => void calls.push('begin'),
    reserve(tensor) {
      calls.push(tensor.name);
      if (skip(tensor.name)) return null;
      const view = new Uint8Array(tensor.byteSize);
      tensors.set(tensor.name, view);
      return view;
    },
    end: () => void calls.push('end'),
  };
  return { sink, tensors, calls };
}

async function expectLoadsModel(source: ModelSource, file = model): Promise<void> {
  const { sink, tensors, calls } = collectingSink();
  const header = await loadGGUF(source, sink);
  const expected = parseGGUF(file);
  expect(header).toEqual(expected);
  expect(calls).toEqual(['begin', ...[...expected.tensors].sort((a, b) => a.offset - b.offset).map((t) => t.name), 'end']);
  for (const tensor of expected.tensors) expect(tensors.get(tensor.name), tensor.name).toEqual(bytesOf(file, expected, tensor));
}

interface StreamOptions {
  chunk?: number;
  /** Bytes after which the stream stalls forever (until cancelled) instead of ending. */
  stallAt?: number;
  onCancel?: () => void;
}

function streamOf(bytes: Uint8Array, { chunk = 4096, stallAt, onCancel }: StreamOptions = {}): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const end = Math.min(at + chunk, stallAt ?? bytes.length, bytes.length);
      if (at === end) {
        if (stallAt === undefined) controller.close();
        return stallAt === undefined ? undefined : new Promise<void>(() => {});
      }
      controller.enqueue(bytes.slice(at, end));
      at = end;
    },
    cancel: () => onCancel?.(),
  }, { highWaterMark: 0 });
}

/** An endless stream: `head`, then zeros forever. */
function endless(head: Uint8Array): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(sent ? new Uint8Array(4096) : head);
      sent = true;
    },
  }, { highWaterMark: 0 });
}

async function rejection(promise: Promise<unknown>): Promise<RecycleGPTError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(RecycleGPTError);
    return error as RecycleGPTError;
  }
  throw new Error('expected a rejection');
}

let dir: string;
let modelPath: string;
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gguf-load-'));
  modelPath = join(dir, 'model.gguf');
  await writeFile(modelPath, model);
  server = createServer((req, res) => {
    // A fresh connection per request: a test that cancels a body mid-stream must not leave a half-read
    // keep-alive socket for the next fetch to reuse (ECONNRESET on a loaded machine).
    res.shouldKeepAlive = false;
    if (req.url === '/model.gguf') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': model.length });
      res.end(model);
    } else if (req.url === '/chunked.gguf') {
      res.writeHead(200); // no content-length: the size is unknown
      res.write(model.subarray(0, 1000));
      res.end(model.subarray(1000));
    } else {
      res.writeHead(404, 'Not Found').end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('loadGGUF streams the same bytes from every kind of source', () => {
  it('file path', () => expectLoadsModel(modelPath));
  it('file: URL and file: URL string', async () => {
    await expectLoadsModel(pathToFileURL(modelPath));
    await expectLoadsModel(pathToFileURL(modelPath).href);
  });
  it('http URL, with and without content-length', async () => {
    await expectLoadsModel(`${baseUrl}/model.gguf`);
    await expectLoadsModel(new URL(`${baseUrl}/chunked.gguf`));
  });
  it('Response', () => expectLoadsModel(new Response(model)));
  for (const chunk of [1, 7, 65536]) {
    it(`ReadableStream in ${chunk}-byte chunks`, () => expectLoadsModel(streamOf(model, { chunk })));
  }
  it('ArrayBuffer, typed array at an odd offset, DataView', async () => {
    await expectLoadsModel(model.slice().buffer);
    const shifted = new Uint8Array(model.length + 4);
    shifted.set(model, 3);
    await expectLoadsModel(shifted.subarray(3, 3 + model.length));
    await expectLoadsModel(new DataView(shifted.buffer, 3, model.length));
  });
  it('Blob', () => expectLoadsModel(new Blob([model])));
  it('R2 object body', () => expectLoadsModel({ body: streamOf(model, { chunk: 5000 }), size: model.length, key: 'models/tiny.gguf' }));
  it('a byte stream that enqueues 7-byte chunks (read through a BYOB reader after the header)', () => {
    let at = 0;
    const stream = new ReadableStream({
      type: 'bytes',
      pull(controller) {
        if (at >= model.length) return controller.close();
        controller.enqueue(model.slice(at, (at += 7)));
      },
    });
    return expectLoadsModel(stream);
  });
  it('a stream of ArrayBuffer chunks', () => {
    const stream = streamOf(model, { chunk: 3000 }).pipeThrough(new TransformStream<Uint8Array, unknown>({
      transform: (chunk, controller) => controller.enqueue(chunk.slice().buffer),
    }));
    return expectLoadsModel(stream as ReadableStream<Uint8Array>);
  });
});

describe('loadGGUF behaviour', () => {
  it('skips the tensors the sink declines', async () => {
    const { sink, tensors } = collectingSink((name) => name !== 'blk.0.attn_q.weight');
    await loadGGUF(streamOf(model, { chunk: 999 }), sink);
    const wanted = modelHeader.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
    expect([...tensors.keys()]).toEqual([wanted.name]);
    expect(tensors.get(wanted.name)).toEqual(bytesOf(model, modelHeader, wanted));
  });

  it('reports progress about every 1%, in order, ending at the total', async () => {
    const reports: LoadProgress[] = [];
    await loadGGUF(streamOf(model, { chunk: 512 }).pipeThrough(new TransformStream()), collectingSink().sink, {
      onProgress: (p) => reports.push(p),
    });
    const withSize: LoadProgress[] = [];
    await loadGGUF(new Blob([model]), collectingSink().sink, { onProgress: (p) => withSize.push(p) });
    expect(reports.at(-1)!.total).toBeUndefined();
    expect(withSize.at(-1)).toEqual({ loaded: model.length, total: model.length });
    expect(withSize.length).toBeGreaterThan(1);
    expect(withSize.length).toBeLessThanOrEqual(102);
    for (let i = 1; i < withSize.length; i++) expect(withSize[i]!.loaded).toBeGreaterThanOrEqual(withSize[i - 1]!.loaded);
  });

  it('readGGUFHeader reads only the header and cancels the rest', async () => {
    let cancelled = false;
    const header = await readGGUFHeader(streamOf(padded, { onCancel: () => (cancelled = true) }));
    expect(header).toEqual(modelHeader);
    expect(cancelled).toBe(true);
    expect(await readGGUFHeader(`${baseUrl}/model.gguf`)).toEqual(modelHeader);
  });

  it('passes sink errors through and stops reading', async () => {
    let cancelled = false;
    const failure = new InvalidArgumentError('unsupported architecture');
    const sink = { ...collectingSink().sink, begin: () => Promise.reject(failure) };
    await expect(loadGGUF(streamOf(padded, { onCancel: () => (cancelled = true) }), sink)).rejects.toBe(failure);
    expect(cancelled).toBe(true);
  });

  it('refuses a sink view of the wrong length', async () => {
    const sink = { ...collectingSink().sink, reserve: () => new Uint8Array(3) };
    const error = await rejection(loadGGUF(tiny, sink));
    expect(error.code).toBe('ENGINE');
    expect(error.message).toMatch(/gave 3 bytes for tensor "w", which needs 102/);
  });
});

describe('loadGGUF failures are typed', () => {
  it('missing file, directory, HTTP error, null body, unreachable host', async () => {
    const cases: [ModelSource, RegExp][] = [
      [join(dir, 'nope.gguf'), /cannot open model file ".*nope.gguf": no such file/],
      [dir, /is not a regular file/],
      [`${baseUrl}/missing.gguf`, /HTTP 404 Not Found/],
      [new Response(null), /has no body/],
      ['http://127.0.0.1:1/model.gguf', /could not fetch the model from http:\/\/127.0.0.1:1\/model.gguf/],
    ];
    for (const [source, message] of cases) {
      const error = await rejection(loadGGUF(source, collectingSink().sink));
      expect(error.code).toBe('SOURCE_UNREADABLE');
      expect(error.message).toMatch(message);
    }
  });

  it('an unsupported source or URL is an InvalidArgumentError', async () => {
    expect(await rejection(loadGGUF(42 as unknown as ModelSource, collectingSink().sink))).toBeInstanceOf(InvalidArgumentError);
    expect((await rejection(loadGGUF(new URL('ftp://x/y.gguf'), collectingSink().sink))).message).toMatch(/ftp:/);
    expect(await rejection(loadGGUF(model, collectingSink().sink, { maxHeaderBytes: Number.NaN }))).toBeInstanceOf(InvalidArgumentError);
  });

  it('a stream of non-bytes is SOURCE_UNREADABLE', async () => {
    const stream = new ReadableStream({ start: (c) => c.enqueue('GGUF') });
    const error = await rejection(loadGGUF(stream as ReadableStream<Uint8Array>, collectingSink().sink));
    expect(error.message).toMatch(/yielded a string chunk/);
  });

  it('abort before start and mid-stream rejects with ABORTED and cancels the stream', async () => {
    expect((await rejection(loadGGUF(model, collectingSink().sink, { signal: AbortSignal.abort() }))).code).toBe('ABORTED');

    const controller = new AbortController();
    let cancelled = false;
    const stalled = streamOf(padded, { chunk: 1000, stallAt: model.length + 100_000, onCancel: () => (cancelled = true) });
    const { sink } = collectingSink();
    const loading = loadGGUF(stalled, { ...sink, reserve: (t) => (t.name === 'blk.0.attn_q.weight' && controller.abort(), sink.reserve(t)) }, {
      signal: controller.signal,
    });
    const error = await rejection(loading);
    expect(error.code).toBe('ABORTED');
    expect(cancelled).toBe(true);
  });

  it('a stream that ends inside a tensor names the tensor and the bytes it got', async () => {
    const q = modelHeader.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
    const cut = modelHeader.dataOffset + q.offset + 100;
    const error = await rejection(loadGGUF(streamOf(model, { chunk: 777 }).pipeThrough(cutAt(cut)), collectingSink().sink));
    expect(error).toBeInstanceOf(GGUFError);
    expect(error.message).toBe(`truncated: tensor "blk.0.attn_q.weight" needs ${q.byteSize} bytes, got 100`);
  });

  it('a stream that ends in the header or the padding is truncated too', async () => {
    for (const cut of [10, 70_000, modelHeader.dataOffset - 1]) {
      const error = await rejection(loadGGUF(streamOf(model).pipeThrough(cutAt(cut)), collectingSink().sink));
      expect(error).toBeInstanceOf(GGUFError);
      expect(error.message).toMatch(/truncated/);
    }
    const first = [...modelHeader.tensors].sort((a, b) => a.offset - b.offset);
    const paddingCut = modelHeader.dataOffset + first[0]!.offset + first[0]!.byteSize + 1;
    const error = await rejection(loadGGUF(streamOf(model).pipeThrough(cutAt(paddingCut)), collectingSink().sink));
    expect(error.message).toMatch(/truncated: tensor "output_norm.weight" starts at byte \d+, but the stream ended at byte/);
    // With the size known up front, the header alone shows that the data is missing.
    expect((await rejection(loadGGUF(new Blob([model.subarray(0, model.length - 200)]), collectingSink().sink))).message).toMatch(
      /truncated: tensor ".*" ends at byte/,
    );
  });

  it('absurd headers on an endless stream fail fast instead of buffering', async () => {
    const hugeString = new Uint8Array(32);
    const view = new DataView(hugeString.buffer);
    hugeString.set(new TextEncoder().encode('GGUF'));
    view.setUint32(4, 3, true);
    view.setBigUint64(16, 1n, true); // one KV...
    view.setBigUint64(24, 2n ** 40n, true); // ...whose key claims to be 1 TiB long
    expect((await rejection(loadGGUF(endless(hugeString), collectingSink().sink))).message).toMatch(/length of metadata key #0 is 1099511627776/);
    const error = await rejection(loadGGUF(streamOf(model, { chunk: 4096 }), collectingSink().sink, { maxHeaderBytes: 50_000 }));
    expect(error.message).toMatch(/50000-byte header cap|larger than 50000 bytes/);
  });
});

/** Passes bytes through up to `limit`, then ends the stream. */
function cutAt(limit: number): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  return new TransformStream({
    transform(chunk, controller) {
      const keep = Math.max(0, Math.min(chunk.length, limit - seen));
      if (keep > 0) controller.enqueue(chunk.subarray(0, keep));
      seen += chunk.length;
      if (seen >= limit) controller.terminate();
    },
  });
}
