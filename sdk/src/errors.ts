/** Every failure a user can cause is a RecycleGPTError with a stable `code` and a message that says what to do. */
export type ErrorCode =
  | 'GGUF_INVALID'
  | 'GGUF_UNSUPPORTED'
  | 'MODEL_INVALID'
  | 'SOURCE_UNREADABLE'
  | 'OUT_OF_MEMORY'
  | 'CONTEXT_FULL'
  | 'INVALID_ARGUMENT'
  | 'UNSUPPORTED_PARAMETER'
  | 'ABORTED'
  | 'DISPOSED'
  | 'ENGINE'
  /** The `cache` load option asked for (`required: true`) a store this runtime lacks, or one that could not keep the file. */
  | 'CACHE_UNAVAILABLE';

export class RecycleGPTError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The bytes are not a well-formed GGUF file (bad magic, truncated, absurd counts, offsets past the end). */
export class GGUFError extends RecycleGPTError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GGUF_INVALID', message, options);
  }
}

/** A well-formed file that asks for something this engine does not run (architecture, tensor type, tokenizer). */
export class UnsupportedError extends RecycleGPTError {
  constructor(message: string) {
    super('GGUF_UNSUPPORTED', message);
  }
}

export class InvalidArgumentError extends RecycleGPTError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/** A prompt or conversation longer than the context the model was loaded with; both numbers are on the error. */
export class ContextFullError extends RecycleGPTError {
  constructor(
    readonly promptTokens: number,
    readonly contextLength: number,
    remedy = 'shorten it or load the model with a larger contextLength',
  ) {
    super('CONTEXT_FULL', `the prompt has ${promptTokens} tokens but the context holds ${contextLength}; ${remedy}`);
  }
}

/** A well-formed request that asks for something this engine does not do (e.g. a JSON Schema keyword); `parameter` names it. */
export class UnsupportedParameterError extends RecycleGPTError {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super('UNSUPPORTED_PARAMETER', message);
  }
}
