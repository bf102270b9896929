import { AppError } from '../errors.ts';
import { header, stateOf, type ApiRequest } from './types.ts';

export const MAX_JSON_DEPTH = 32;

/** A string PostgreSQL cannot store: U+0000, or a lone UTF-16 surrogate (`"\\udd23"` in JSON), which has no UTF-8 form. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const unstorable = (s: string) => s.includes('\u0000') || LONE_SURROGATE.test(s);

function containsUnstorable(value: unknown): boolean {
  if (typeof value === 'string') return unstorable(value);
  if (Array.isArray(value)) return value.some(containsUnstorable);
  if (value && typeof value === 'object') return Object.entries(value).some(([k, v]) => unstorable(k) || containsUnstorable(v));
  return false;
}

function depthOf(value: unknown, depth = 0): number {
  if (depth > MAX_JSON_DEPTH) return depth;
  if (Array.isArray(value)) return value.reduce<number>((d, v) => Math.max(d, depthOf(v, depth + 1)), depth + 1);
  if (value && typeof value === 'object') return Object.values(value).reduce<number>((d, v) => Math.max(d, depthOf(v, depth + 1)), depth + 1);
  return depth;
}

/**
 * The request's JSON body (form-encoded on routes declaring `bodyFormat: 'form'`), parsed once and
 * memoised on the request state. Oversized bodies are 413, other content types 415, malformed JSON
 * 400, absurdly nested JSON 422. An empty body is `undefined`.
 */
export function bodyOf(request: ApiRequest, maxBytes: number): unknown {
  const state = stateOf(request);
  if ('body' in state) return state.body;
  const event = request.event;
  let raw = event.body ?? '';
  if (event.isBase64Encoded && raw) raw = Buffer.from(raw, 'base64').toString('utf8');
  if (Buffer.byteLength(raw, 'utf8') > maxBytes) {
    throw new AppError('PAYLOAD_TOO_LARGE', 413, `Request body exceeds ${maxBytes} bytes`);
  }
  if (raw.trim() === '') {
    state.body = undefined;
    return undefined;
  }
  const contentType = header(event, 'content-type');
  if (state.route?.definition.bodyFormat === 'form') {
    // OAuth's token endpoint speaks application/x-www-form-urlencoded (RFC 6749 §4.1.3); repeated keys keep the first value.
    if (!contentType || !/^application\/x-www-form-urlencoded\b/i.test(contentType)) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', 415, 'Content-Type must be application/x-www-form-urlencoded');
    }
    const form: Record<string, string> = {};
    for (const [k, v] of new URLSearchParams(raw)) form[k] ??= v;
    state.body = form;
    return form;
  }
  if (contentType && !/^application\/([\w.+-]*\+)?json\b/i.test(contentType) && !/^text\/plain\b/i.test(contentType)) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', 415, 'Content-Type must be application/json');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new AppError('INVALID_JSON', 400, 'Request body is not valid JSON');
  }
  if (depthOf(parsed) > MAX_JSON_DEPTH) {
    throw new AppError('VALIDATION_ERROR', 422, `JSON nesting deeper than ${MAX_JSON_DEPTH} levels`, []);
  }
  // PostgreSQL text and jsonb cannot hold U+0000 nor a lone surrogate (invalid UTF-8); refusing them here
  // keeps every route's writes storable instead of failing in the driver with a 500.
  if (containsUnstorable(parsed)) {
    throw new AppError('VALIDATION_ERROR', 422, 'strings must not contain the NUL character (U+0000) or unpaired UTF-16 surrogates', [{ loc: ['body'], msg: 'NUL character or unpaired surrogate', type: 'value_error' }]);
  }
  state.body = parsed;
  return parsed;
}
