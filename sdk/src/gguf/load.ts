/**
 * Streaming loader: reads a GGUF source once, front to back. The header is buffered (growing
 * geometrically up to a cap); tensor bytes go straight from each stream chunk into the view the
 * sink hands out (WASM memory), so JS never holds a second copy of the weights.
 */
import { GGUFError, InvalidArgumentError, RecycleGPTError } from '../errors.js';
import { parseGGUFPrefix } from './parse.js';
import type { CacheOption, CacheReport } from './cache.js';
import { openSource, throwIfAborted, type ModelSource, type OpenedSource } from './source.js';
import { StreamInput } from './stream-input.js';
import type { GGUFHeader, GGUFTensorInfo } from './types.js';

export interface TensorSink {
  /** Called once with the parsed header, before any tensor bytes; validates and creates the model (may throw). */
  begin(header: GGUFHeader): void | Promise<void>;
  /** Where to write this tensor's `byteSize` bytes (exactly that long), or null to skip them. Called in file order. */
  reserve(tensor: GGUFTensorInfo): Uint8Array | null;
  /** Called after the last tensor's bytes were written. */
  end(): void | Promise<void>;
}

export interface LoadProgress {
  /** Bytes read so far (header and padding included). */
  loaded: number;
  /** Size of the source, when it is known. */
  total?: number;
  /** With the `cache` option: where these bytes come from. */
  from?: 'cache' | 'network';
}

export interface LoadGGUFOptions {
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
  /** Largest header accepted (metadata and tensor infos); guards the buffer against corrupt files. Default 256 MiB. */
  maxHeaderBytes?: number;
  /** Keep an http(s) download in a browser store, or read it from there (cache.ts); `onCache` gets the outcome. */
  cache?: CacheOption;
  onCache?: (report: CacheReport) => void;
}

export const DEFAULT_MAX_HEADER_BYTES = 256 << 20;
const INITIAL_HEADER_BYTES = 64 << 10;
/** Progress step when the total is unknown (otherwise 1% of it). */
const UNKNOWN_TOTAL_PROGRESS_STEP = 4 << 20;

/** Streams a GGUF source into `sink` and returns its header. */
export async function loadGGUF(source: ModelSource, sink: TensorSink, options: LoadGGUFOptions = {}): Promise<GGUFHeader> {
  const opened = await openSource(source, { signal: options.signal, cache: options.cache });
  const progress = progressReporter(opened, options.onProgress);
  const input = new StreamInput(opened, options.signal, progress.update);
  try {
    const header = await readHeader(input, opened.size, options.maxHeaderBytes);
    input.reuseReadBuffers();
    await sink.begin(header);
    await copyTensors(input, header, sink, options.signal);
    // The file's last bytes (padding) still go into the store, which then marks its copy complete.
    if (opened.cache) options.onCache?.(await opened.cache.finish());
    await sink.end();
    progress.finish(input.position);
    return header;
  } finally {
    input.close();
  }
}

/** Reads only the header of a GGUF source (for `info`-style tools) and stops reading there. */
export async function readGGUFHeader(
  source: ModelSource,
  options: Pick<LoadGGUFOptions, 'signal' | 'maxHeaderBytes'> = {},
): Promise<GGUFHeader> {
  const opened = await openSource(source, { signal: options.signal });
  const input = new StreamInput(opened, options.signal);
  try {
    return await readHeader(input, opened.size, options.maxHeaderBytes);
  } finally {
    input.close();
  }
}

async function readHeader(input: StreamInput, totalSize: number | undefined, maxHeaderBytes = DEFAULT_MAX_HEADER_BYTES): Promise<GGUFHeader> {
  if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes <= 0) {
    throw new InvalidArgumentError(`maxHeaderBytes must be a positive integer, got ${maxHeaderBytes}`);
  }
  let want = Math.min(INITIAL_HEADER_BYTES, maxHeaderBytes);
  for (;;) {
    await input.fill(want);
    const prefix = input.peek(want);
    const complete = input.ended && prefix.length === input.bufferedBytes;
    const result = parseGGUFPrefix(prefix, { complete, totalSize, maxHeaderBytes });
    if (!('needBytes' in result)) return result;
    // Doubling keeps the number of re-parses logarithmic in the header size.
    want = Math.min(Math.max(result.needBytes, want * 2), maxHeaderBytes);
  }
}

async function copyTensors(input: StreamInput, header: GGUFHeader, sink: TensorSink, signal: AbortSignal | undefined): Promise<void> {
  const inFileOrder = [...header.tensors].sort((a, b) => a.offset - b.offset);
  for (const tensor of inFileOrder) {
    throwIfAborted(signal); // the bytes may all be buffered already, so no read would notice the abort
    const start = header.dataOffset + tensor.offset;
    const gap = start - input.position;
    if ((await input.consume(null, gap)) < gap) {
      throw new GGUFError(`truncated: tensor "${tensor.name}" starts at byte ${start}, but the stream ended at byte ${input.position}`);
    }
    const view = sink.reserve(tensor);
    if (view && view.length !== tensor.byteSize) {
      throw new RecycleGPTError('ENGINE', `the sink gave ${view.length} bytes for tensor "${tensor.name}", which needs ${tensor.byteSize}`);
    }
    const got = await input.consume(view, tensor.byteSize);
    if (got < tensor.byteSize) {
      throw new GGUFError(`truncated: tensor "${tensor.name}" needs ${tensor.byteSize} bytes, got ${got}`);
    }
  }
  throwIfAborted(signal);
}

function progressReporter({ size: total, cache }: OpenedSource, onProgress: LoadGGUFOptions['onProgress']) {
  const step = total ? Math.max(1, Math.ceil(total / 100)) : UNKNOWN_TOTAL_PROGRESS_STEP;
  const report = (loaded: number) => onProgress?.({ loaded, total, ...(cache && { from: cache.from(loaded) }) });
  let reported = 0;
  return {
    update(loaded: number) {
      if (onProgress && loaded - reported >= step) {
        reported = loaded;
        report(loaded);
      }
    },
    /** Bytes after the last tensor are never read, so the final report counts the source as fully loaded. */
    finish(loaded: number) {
      report(total ?? loaded);
    },
  };
}
