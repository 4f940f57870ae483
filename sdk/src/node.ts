/** The SDK for Node: model files by path, the engine read from disk, and WebGPU through Dawn (`provideNodeWebGPU`). */
import { nodeFiles } from './node-files.js';
import { runtime } from './runtime.js';
import './with-webgpu.js';

runtime.files = nodeFiles;

export * from './index.js';
export { provideNodeWebGPU } from './node-webgpu.js';
