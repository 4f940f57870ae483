export * from './types.js';
export { parseGGUF, DEFAULT_ALIGNMENT, type ParseGGUFOptions } from './parse.js';
export { ggmlTypeInfo, ggmlTypeName, type GGMLTypeInfo } from '../contract/ggml-types.js';
export { openSource, type ModelSource, type OpenedSource, type R2ObjectBodyLike } from './source.js';
export {
  loadGGUF,
  readGGUFHeader,
  DEFAULT_MAX_HEADER_BYTES,
  type TensorSink,
  type LoadProgress,
  type LoadGGUFOptions,
} from './load.js';
export { summarizeGGUF, type GGUFSummary, type GGUFTypeUsage } from './summary.js';
