import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { lambdaContext } from '#local/proxy-event.ts';

export { lambdaContext };

export interface ApiEventInput {
  method?: string;
  path: string;
  /** request headers as the client cased them; a JSON body adds `Content-Type: application/json` unless given */
  headers?: Record<string, string>;
  /** a string is sent as is; anything else is JSON-encoded */
  body?: unknown;
  query?: Record<string, string>;
  isBase64Encoded?: boolean;
  sourceIp?: string;
}

/** Headers API Gateway and CloudFront add to every request; none of them is a credential. */
const GATEWAY_HEADERS: Record<string, string> = {
  Accept: 'application/json',
  Host: 'abc123defg.execute-api.eu-west-1.amazonaws.com',
  'User-Agent': 'memorysync-typescript-sdk/1.4.0',
  'X-Amzn-Trace-Id': 'Root=1-67891233-abcdef012345678912345678',
  'X-Forwarded-For': '203.0.113.10',
  'X-Forwarded-Port': '443',
  'X-Forwarded-Proto': 'https',
};

/**
 * A complete API Gateway REST (v1) proxy event, as the `{proxy+}` integration delivers it to the API
 * Lambda: single- and multi-value headers and query strings, the stage-prefixed request-context path,
 * and the caller's source IP.
 */
export function apiEvent(input: ApiEventInput): APIGatewayProxyEvent {
  const method = (input.method ?? 'GET').toUpperCase();
  const body = input.body === undefined || input.body === null ? null : typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
  const given = input.headers ?? {};
  const hasContentType = Object.keys(given).some((k) => k.toLowerCase() === 'content-type');
  const headers: Record<string, string> = {
    ...GATEWAY_HEADERS,
    ...(body !== null && typeof input.body !== 'string' && !hasContentType ? { 'Content-Type': 'application/json' } : {}),
    ...given,
  };
  const query = input.query && Object.keys(input.query).length ? { ...input.query } : null;
  const sourceIp = input.sourceIp ?? '203.0.113.10';
  return {
    resource: '/{proxy+}',
    path: input.path,
    httpMethod: method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: query,
    multiValueQueryStringParameters: query ? Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]])) : null,
    pathParameters: { proxy: input.path.replace(/^\//, '') },
    stageVariables: null,
    body,
    isBase64Encoded: input.isBase64Encoded ?? false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123defg',
      authorizer: null,
      protocol: 'HTTP/1.1',
      httpMethod: method,
      path: `/prod${input.path}`,
      stage: 'prod',
      requestId: randomUUID(),
      requestTimeEpoch: Date.now(),
      resourceId: 'a1b2c3',
      resourcePath: '/{proxy+}',
      domainName: 'abc123defg.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abc123defg',
      extendedRequestId: 'LgYbzGfHjoEFZyw=',
      identity: {
        sourceIp,
        userAgent: headers['User-Agent'] ?? null,
        accessKey: null, accountId: null, apiKey: null, apiKeyId: null, caller: null, clientCert: null,
        cognitoAuthenticationProvider: null, cognitoAuthenticationType: null, cognitoIdentityId: null,
        cognitoIdentityPoolId: null, principalOrgId: null, user: null, userArn: null,
      },
    },
  };
}
