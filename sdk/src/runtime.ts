/**
 * What only some runtimes can do, registered by the package's entry for those runtimes (the conditions of
 * package.json "exports"): Node's file system (model paths, file: URLs, the engine file next to the SDK)
 * and the WebGPU backend (browsers; Node with Dawn). The entry for Workers registers neither, so a
 * Worker's bundle has no node: import and no WebGPU code.
 */
import type { OpenedSource } from './gguf/source.js';

export interface FileAccess {
  /** Opens a model file, by path or file: URL, as a byte stream. */
  open(file: string | URL): Promise<OpenedSource>;
  /** Reads a whole file (the engine) named by a file: URL. */
  read(url: URL): Promise<Uint8Array<ArrayBuffer>>;
}

export const runtime: {
  files?: FileAccess;
  webgpu?: () => Promise<typeof import('./backend-webgpu.js')>;
} = {};
