import type { APIGatewayProxyResult } from 'aws-lambda';
import type { AppError } from '../errors.ts';

export const SCIM_CONTENT_TYPE = 'application/scim+json';
export const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** RFC 7644 §3.12 scimType values a service may throw as an AppError code. */
const SCIM_TYPES = new Set(['invalidFilter', 'tooMany', 'uniqueness', 'mutability', 'invalidSyntax', 'invalidPath', 'noTarget', 'invalidValue', 'invalidVers', 'sensitive']);
/** RFC 6749 §5.2 error codes of the token endpoint (and RFC 7009's unsupported_token_type). */
const OAUTH_ERRORS = new Set(['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'unsupported_token_type']);
/** The endpoints a client authenticates to and that answer in RFC 6749 §5.2 shape (RFC 7662 §2.3, RFC 7009 §2.2.1). */
const OAUTH_ENDPOINTS = new Set(['/oauth/token', '/oauth/introspect', '/oauth/revoke']);

function scimError(e: AppError, requestId: string): APIGatewayProxyResult {
  const scimType = SCIM_TYPES.has(e.code) ? e.code : e.status === 422 ? 'invalidValue' : e.code === 'INVALID_JSON' ? 'invalidSyntax' : undefined;
  // SCIM has no 422; schema violations are 400 invalidSyntax/invalidValue.
  const status = e.status === 422 || e.status === 415 ? 400 : e.status;
  return {
    statusCode: status,
    headers: { 'Content-Type': SCIM_CONTENT_TYPE, 'X-Request-ID': requestId, ...(e.headers ?? {}) },
    body: JSON.stringify({ schemas: [SCIM_ERROR_SCHEMA], status: String(status), ...(scimType ? { scimType } : {}), detail: e.message, request_id: requestId }),
  };
}

function oauthTokenError(e: AppError, requestId: string): APIGatewayProxyResult {
  const error = OAUTH_ERRORS.has(e.code) ? e.code : e.status === 401 ? 'invalid_client' : e.status < 500 ? 'invalid_request' : 'server_error';
  const status = e.status === 422 || e.status === 415 ? 400 : e.status;
  return {
    statusCode: status,
    headers: { 'Content-Type': 'application/json', 'X-Request-ID': requestId, ...(status === 401 ? { 'WWW-Authenticate': 'Basic realm="oauth"' } : {}), ...(e.headers ?? {}) },
    body: JSON.stringify({ error, error_description: e.message, request_id: requestId }),
  };
}

/**
 * Errors of the protocol endpoints whose clients are third-party software that reads a standard
 * shape: SCIM's Error message under /scim/v2 (RFC 7644 §3.12) and OAuth's token error (RFC 6749
 * §5.2) of the token, introspection and revocation endpoints. `undefined` for every other path, which keeps the contract's envelope.
 */
export function renderProtocolError(path: string, e: AppError, requestId: string): APIGatewayProxyResult | undefined {
  if (path.startsWith('/scim/v2/') || path === '/scim/v2') return scimError(e, requestId);
  if (OAUTH_ENDPOINTS.has(path.replace(/\/$/, ''))) return oauthTokenError(e, requestId);
  return undefined;
}
