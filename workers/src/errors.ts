import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** OpenAI's error `type` values that this server uses. */
export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'permission_error' | 'not_found_error' | 'rate_limit_error' | 'server_error';

export interface OpenAIErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

/**
 * An error that becomes a response with OpenAI's error body. It is a Hono HTTPException, so the one
 * `onError` handler treats ours and those of Hono's middleware (bearer-auth, body-limit, validator) alike.
 */
export class OpenAIError extends HTTPException {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly type: ErrorType,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Extra response headers, e.g. Retry-After on a 429. */
    readonly headers: Record<string, string> = {},
  ) {
    super(status, { message });
    this.name = 'OpenAIError';
  }

  body(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function badRequest(message: string, param: string | null = null, code: string | null = 'invalid_value'): OpenAIError {
  return new OpenAIError(400, 'invalid_request_error', message, param, code);
}

/** The error body and type of each status that Hono's own middleware throws. */
const HONO_STATUS: Partial<Record<number, { type: ErrorType; code: string; message: string }>> = {
  400: { type: 'invalid_request_error', code: 'invalid_value', message: 'The request is malformed.' },
  403: { type: 'permission_error', code: 'forbidden', message: 'This request is not allowed.' },
  404: { type: 'not_found_error', code: 'unknown_url', message: 'Not found.' },
  413: { type: 'invalid_request_error', code: 'request_too_large', message: 'The request body is too large.' },
  429: { type: 'rate_limit_error', code: 'rate_limit_exceeded', message: 'Too many requests; retry shortly.' },
};

/** The SDK's RecycleGPTError, recognised by shape so that a second copy of the SDK in a bundle still maps correctly. */
interface SdkError extends Error {
  code: string;
}

function isSdkError(err: unknown): err is SdkError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}

/**
 * Maps any thrown value to the error the client sees; unknown failures do not leak their message. `promptParam`
 * names the request field a prompt that does not fit the context came in.
 */
export function toOpenAIError(err: unknown, promptParam: string | null = null): OpenAIError {
  if (err instanceof OpenAIError) return err;
  if (err instanceof HTTPException) {
    const challenge = err.res?.headers.get('WWW-Authenticate');
    if (challenge) return authenticationError(challenge);
    const known = HONO_STATUS[err.status] ?? { type: err.status >= 500 ? 'server_error' : 'invalid_request_error', code: 'http_error', message: 'The request failed.' };
    return new OpenAIError(err.status as ContentfulStatusCode, known.type, err.message || known.message, null, known.code);
  }
  if (!isSdkError(err)) return new OpenAIError(500, 'server_error', 'Internal error while generating; see the server log.', null, 'internal_error');
  switch (err.code) {
    case 'INVALID_ARGUMENT':
      return badRequest(err.message, null, 'invalid_value');
    case 'CONTEXT_FULL':
      return badRequest(err.message, promptParam, 'context_length_exceeded');
    case 'GGUF_INVALID':
    case 'GGUF_UNSUPPORTED':
    case 'MODEL_INVALID':
    case 'SOURCE_UNREADABLE':
    case 'OUT_OF_MEMORY':
      return modelUnavailable(`The model could not be loaded: ${err.message}`);
    default:
      return new OpenAIError(500, 'server_error', `The engine failed: ${err.message}`, null, 'engine_error');
  }
}

/**
 * hono/bearer-auth's refusals, told apart by the challenge it sends: no header, a malformed one (its 400,
 * a 401 as OpenAI answers), or a wrong key. The challenge goes back with the error.
 */
function authenticationError(challenge: string): OpenAIError {
  const message = challenge.includes('invalid_token')
    ? 'Incorrect API key.'
    : challenge.includes('invalid_request')
      ? 'Malformed Authorization header: send "Authorization: Bearer <key>".'
      : 'Missing API key: send "Authorization: Bearer <key>".';
  return new OpenAIError(401, 'authentication_error', message, null, 'invalid_api_key', { 'WWW-Authenticate': challenge });
}

export function modelUnavailable(message: string): OpenAIError {
  return new OpenAIError(503, 'server_error', message, null, 'model_unavailable');
}

/** The app's one error handler: every failure leaves as OpenAI's error body with its status. */
export function onError(err: Error, c: Context): Response {
  const error = toOpenAIError(err);
  // Failures the server did not expect are logged; deliberate errors already say what is wrong.
  if (!(err instanceof HTTPException)) console.error(err);
  return c.json(error.body(), error.status, error.headers);
}
