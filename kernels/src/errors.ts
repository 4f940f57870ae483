/** The SDK's typed errors; kernels/ throws only these so callers handle one error family. */
export { RecycleGPTError, InvalidArgumentError } from '../../sdk/src/errors.js';
