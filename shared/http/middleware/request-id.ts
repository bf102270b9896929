import { randomUUID } from 'node:crypto';
import type { MiddlewareObj } from '@middy/core';
import { header, stateOf, type ApiRequest } from '../types.ts';

const VALID = /^[A-Za-z0-9._:-]{8,128}$/;

/** Echoes a well-formed incoming X-Request-ID or generates one; every response carries it. */
export const requestId = (): MiddlewareObj => {
  const stamp = (request: ApiRequest) => {
    if (!request.response) return;
    request.response.headers = { ...(request.response.headers ?? {}), 'X-Request-ID': stateOf(request).requestId };
  };
  return {
    before: (request) => {
      const incoming = header((request as ApiRequest).event, 'x-request-id');
      const state = stateOf(request);
      state.requestId = incoming && VALID.test(incoming) ? incoming : randomUUID();
      state.startedAt = Date.now();
    },
    after: (request) => stamp(request as ApiRequest),
    onError: (request) => stamp(request as ApiRequest),
  };
};
