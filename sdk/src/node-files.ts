/** Files for the SDK's Node entry: model files as byte streams, and the engine read from disk. */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RecycleGPTError } from './errors.js';
import { describe, type OpenedSource } from './gguf/source.js';
import type { FileAccess } from './runtime.js';

/** Bytes per read from a file: large enough to keep syscalls rare, small enough to be a trifle of memory. */
const FILE_CHUNK_BYTES = 1 << 20;

export const nodeFiles: FileAccess = {
  open: openFile,
  read: async (url) => new Uint8Array(await readFile(url)) as Uint8Array<ArrayBuffer>,
};

async function openFile(pathOrUrl: string | URL): Promise<OpenedSource> {
  const path = typeof pathOrUrl === 'string' ? pathOrUrl : fileURLToPath(pathOrUrl);
  let handle: FileHandle;
  let size: number;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    const reason = (error as { code?: string }).code === 'ENOENT' ? 'no such file' : describe(error);
    throw new RecycleGPTError('SOURCE_UNREADABLE', `cannot open model file "${path}": ${reason}`, { cause: error });
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new RecycleGPTError('SOURCE_UNREADABLE', `"${path}" is not a regular file; pass the path of a .gguf file`);
    size = stats.size;
  } catch (error) {
    await handle.close();
    throw error;
  }
  return { stream: fileStream(handle, path), size, name: basename(path) };
}

/**
 * A byte stream, so that a BYOB reader (the loader's) can have each read land in a buffer it reuses
 * instead of a fresh chunk per read; default readers get chunks of FILE_CHUNK_BYTES.
 */
function fileStream(handle: FileHandle, path: string): ReadableStream<Uint8Array> {
  let closed = false;
  const close = async () => {
    if (!closed) {
      closed = true;
      await handle.close();
    }
  };
  return new ReadableStream({
    type: 'bytes',
    autoAllocateChunkSize: FILE_CHUNK_BYTES,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      try {
        const { bytesRead } = await handle.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength), 0, view.byteLength, null);
        if (bytesRead === 0) {
          await close();
          controller.close();
        }
        request.respond(bytesRead);
      } catch (error) {
        await close().catch(() => {});
        controller.error(new RecycleGPTError('SOURCE_UNREADABLE', `reading model file "${path}" failed: ${describe(error)}`, { cause: error }));
      }
    },
    cancel: close,
  });
}
