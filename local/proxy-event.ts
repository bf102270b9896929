import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';

/**
 * Turns a Node HTTP request into the API Gateway REST (v1) proxy event the Lambda receives, so the
 * local server runs the very same handler. Repeated headers and query keys keep their first value in
 * `headers`/`queryStringParameters` and all values in the multi-value maps, as API Gateway does.
 */
export function toProxyEvent(req: IncomingMessage, body: Buffer): APIGatewayProxyEvent {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i];
    const value = req.rawHeaders[i + 1];
    const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
    headers[key] ??= value;
    (multiValueHeaders[key] ??= []).push(value);
  }
  const query: Record<string, string> = {};
  const multiQuery: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) {
    query[k] ??= v;
    (multiQuery[k] ??= []).push(v);
  }
  const text = body.toString('utf8');
  const binary = body.length > 0 && !Buffer.from(text, 'utf8').equals(body);
  const sourceIp = req.socket.remoteAddress ?? '127.0.0.1';
  // API Gateway hands the path over still percent-encoded; the router decodes each parameter once.
  const path = url.pathname;
  return {
    resource: '/{proxy+}',
    path,
    httpMethod: (req.method ?? 'GET').toUpperCase(),
    headers,
    multiValueHeaders,
    queryStringParameters: Object.keys(query).length ? query : null,
    multiValueQueryStringParameters: Object.keys(multiQuery).length ? multiQuery : null,
    pathParameters: { proxy: path.slice(1) },
    stageVariables: null,
    body: body.length ? (binary ? body.toString('base64') : text) : null,
    isBase64Encoded: binary,
    requestContext: {
      accountId: 'local', apiId: 'local', authorizer: null, protocol: `HTTP/${req.httpVersion}`, httpMethod: (req.method ?? 'GET').toUpperCase(),
      path, stage: 'local', requestId: randomUUID(), requestTimeEpoch: Date.now(), resourceId: 'local', resourcePath: '/{proxy+}',
      identity: {
        sourceIp, userAgent: req.headers['user-agent'] ?? null, accessKey: null, accountId: null, apiKey: null, apiKeyId: null, caller: null,
        clientCert: null, cognitoAuthenticationProvider: null, cognitoAuthenticationType: null, cognitoIdentityId: null,
        cognitoIdentityPoolId: null, principalOrgId: null, user: null, userArn: null,
      },
    },
  };
}

export function lambdaContext(timeoutMs = 29_000): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false, functionName: 'memorysync-api-local', functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:memorysync-api-local', memoryLimitInMB: '1024',
    awsRequestId: randomUUID(), logGroupName: 'local', logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {}, fail: () => {}, succeed: () => {},
  };
}

export function writeProxyResult(res: ServerResponse, result: APIGatewayProxyResult): void {
  for (const [k, v] of Object.entries(result.headers ?? {})) res.setHeader(k, String(v));
  for (const [k, values] of Object.entries(result.multiValueHeaders ?? {})) res.setHeader(k, values.map(String));
  res.statusCode = result.statusCode;
  const body = result.body ? (result.isBase64Encoded ? Buffer.from(result.body, 'base64') : Buffer.from(result.body, 'utf8')) : undefined;
  if (body && result.statusCode !== 204 && result.statusCode !== 304) res.setHeader('Content-Length', body.length);
  res.end(result.statusCode === 204 ? undefined : body);
}
