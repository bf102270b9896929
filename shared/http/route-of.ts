import type { Router } from './router.ts';
import { stateOf, type ApiRequest, type RequestState } from './types.ts';

/**
 * The matched route, resolved once per request. Returns null for unknown paths and methods; the
 * dispatcher then answers 404/405 — after the chain, so those answers carry every header too.
 */
export function routeOf(request: ApiRequest, router: Router): RequestState['route'] {
  const state = stateOf(request);
  if (state.route !== undefined) return state.route;
  try {
    state.route = router.match(request.event.httpMethod, request.event.path);
  } catch {
    state.route = null;
  }
  return state.route;
}
