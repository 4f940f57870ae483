import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** OpenAI's error `type` values that this server uses. */
export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'server_error';

/** An error that becomes an HTTP response with OpenAI's error body. */
export class HttpError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly type: ErrorType,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'HttpError';
  }

  body(): { error: { message: string; type: ErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function badRequest(message: string, param: string | null = null, code: string | null = 'invalid_value'): HttpError {
  return new HttpError(400, 'invalid_request_error', message, param, code);
}

/** The SDK's RecycleGPTError, recognised by shape so that a second copy of the SDK in a bundle still maps correctly. */
interface SdkError extends Error {
  code: string;
}

function isSdkError(err: unknown): err is SdkError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}

/** Maps any thrown value to the HTTP error the client sees; unknown failures do not leak their message. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (!isSdkError(err)) return new HttpError(500, 'server_error', 'Internal error while generating; see the server log.', null, 'internal_error');
  switch (err.code) {
    case 'INVALID_ARGUMENT':
      return badRequest(err.message, null, 'invalid_value');
    case 'CONTEXT_FULL':
      return badRequest(err.message, null, 'context_length_exceeded');
    case 'ABORTED':
      return new HttpError(499 as ContentfulStatusCode, 'invalid_request_error', 'The request was cancelled.', null, 'aborted');
    case 'GGUF_INVALID':
    case 'GGUF_UNSUPPORTED':
    case 'MODEL_INVALID':
    case 'SOURCE_UNREADABLE':
    case 'OUT_OF_MEMORY':
      return new HttpError(503, 'server_error', `The model could not be loaded: ${err.message}`, null, 'model_unavailable');
    default:
      return new HttpError(500, 'server_error', `The engine failed: ${err.message}`, null, 'engine_error');
  }
}
