export { loadModel } from './model.js';
export { listCachedModels, deleteCachedModel } from './gguf/cache.js';
export { RecycleGPTError, GGUFError, UnsupportedError, InvalidArgumentError, ContextFullError, UnsupportedParameterError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { Sampler, Random } from './sampler.js';
export * from './types.js';
export { joinToolCalls } from './chat/completion.js';
export { toolFamily, type ToolFamily } from './chat/tools.js';
export { DECODE_MODES, KERNEL_CHOICES } from './contract/modes.js';
