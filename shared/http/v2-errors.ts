import type { APIGatewayProxyResult } from 'aws-lambda';

/**
 * /api/v2 answers errors in the canonical envelope only — `{error: {code, message, details?}, request_id}` —
 * without the FastAPI-style `detail` mirror that older clients of the unversioned routes read. Other paths
 * pass through unchanged.
 */
export function canonicalEnvelopeOnly(path: string, response: APIGatewayProxyResult): APIGatewayProxyResult {
  if (path !== '/api/v2' && !path.startsWith('/api/v2/')) return response;
  try {
    const { detail: _legacy, ...canonical } = JSON.parse(response.body) as Record<string, unknown>;
    return { ...response, body: JSON.stringify(canonical) };
  } catch {
    return response;
  }
}
