/// <reference types="@webgpu/types" preserve="true" />
/** The package entry: the WebGPU model and what a caller needs to size and configure it. */
export { MAX_TOP_K, WebGPUModel, type ForwardOutput, type HiddenSource, type TopK, type WebGPUModelOptions } from './backend.js';
export { MAX_BATCH, configProblem, tensorProblem, type ModelConfig, type RecycleConfig } from './config.js';
export { largestBufferBytes } from './forward.js';
export { KernelError, type KernelErrorCode } from './errors.js';
