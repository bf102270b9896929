import type { z } from 'zod';
import { AppError } from '../errors.ts';
import { bodyOf } from './request-body.ts';
import type { RouteMatch } from './router.ts';
import { stateOf, type ApiRequest, type RequestState } from './types.ts';

/** FastAPI's wording for an absent field, which clients and their tests match on. */
const missingAsFieldRequired = (issue: { input?: unknown; code?: string }) =>
  issue.code === 'invalid_type' && issue.input === undefined ? 'Field required' : undefined;

const parseWith = (schema: z.ZodType | undefined, value: unknown) => (schema ? schema.parse(value, { error: missingAsFieldRequired }) : value);

/**
 * The route's body, query and path parameters validated by its zod schemas, once per request. The
 * project resolver asks for it before it creates an end user, so a rejected request changes nothing.
 */
export function routeInput(request: ApiRequest, matched: RouteMatch, maxBodyBytes: number): NonNullable<RequestState['input']> {
  const state = stateOf(request);
  if (state.input) return state.input;
  const event = request.event;
  const { definition, params } = matched;
  const rawBody = bodyOf(request, maxBodyBytes);
  if (definition.body && rawBody === undefined && event.httpMethod !== 'GET') {
    throw new AppError('VALIDATION_ERROR', 422, 'body: Field required', [{ loc: ['body'], msg: 'Field required', type: 'missing' }]);
  }
  state.input = {
    body: parseWith(definition.body, rawBody ?? {}),
    query: parseWith(definition.query, { ...(event.queryStringParameters ?? {}) }),
    params: parseWith(definition.params, params),
  };
  return state.input;
}
