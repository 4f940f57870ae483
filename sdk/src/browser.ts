/** The SDK for browsers (and anything else without Node): the WebAssembly engine and the WebGPU backend. */
import './with-webgpu.js';

export * from './index.js';
