/**
 * The kernels' one error type. Its codes are the SDK's (`RecycleGPTError.code`), and the SDK's WebGPU
 * backend rethrows it as its own error class, so callers of the SDK handle one error family; the package
 * itself stays free of the SDK.
 */
export type KernelErrorCode = 'GGUF_UNSUPPORTED' | 'MODEL_INVALID' | 'OUT_OF_MEMORY' | 'CONTEXT_FULL' | 'INVALID_ARGUMENT' | 'DISPOSED' | 'ENGINE';

export class KernelError extends Error {
  readonly code: KernelErrorCode;
  constructor(code: KernelErrorCode, message: string) {
    super(message);
    this.name = 'KernelError';
    this.code = code;
  }
}

export function invalidArgument(message: string): KernelError {
  return new KernelError('INVALID_ARGUMENT', message);
}
