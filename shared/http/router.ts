import { AppError } from '../errors.ts';
import type { RouteDefinition } from './types.ts';

interface CompiledRoute {
  definition: RouteDefinition;
  pattern: RegExp;
  names: string[];
  /** static segments weigh more, so `/memory/export` wins over `/memory/{id}` */
  specificity: number;
}

export interface RouteMatch {
  definition: RouteDefinition;
  params: Record<string, string>;
}

/**
 * Matches a method and path against the route table. Unknown paths are 404, known paths with
 * another method 405 with an `Allow` header — both in the contract's error envelope.
 */
export class Router {
  private readonly compiled: CompiledRoute[];

  constructor(readonly routes: readonly RouteDefinition[]) {
    this.compiled = routes
      .map((definition) => {
        const names: string[] = [];
        const segments = definition.path.split('/').filter(Boolean);
        const source = segments
          .map((s) => {
            const m = /^\{(\w+)\}$/.exec(s);
            if (m) {
              names.push(m[1]);
              return '/([^/]+)';
            }
            return `/${s.replace(/[.*+?^$()|[\]\\]/g, '\\$&')}`;
          })
          .join('');
        const specificity = segments.reduce((n, s, i) => n + (s.startsWith('{') ? 0 : 2 ** (20 - i)), 0);
        return { definition, pattern: new RegExp(`^${source || '/'}/?$`), names, specificity };
      })
      .sort((a, b) => b.specificity - a.specificity);
    const seen = new Set<string>();
    for (const r of routes) {
      // Templates that differ only in parameter names or a trailing slash match the same paths: one would shadow the other.
      const key = `${r.method} ${r.path.split('/').filter(Boolean).map((s) => (/^\{\w+\}$/.test(s) ? '{}' : s)).join('/')}`;
      if (seen.has(key)) throw new Error(`duplicate route ${r.method} ${r.path}`);
      seen.add(key);
    }
  }

  match(method: string, rawPath: string): RouteMatch {
    const path = rawPath.length > 1 && rawPath.endsWith('/') ? rawPath.slice(0, -1) : rawPath;
    const allowed = new Set<string>();
    let matchedSpecificity: number | undefined;
    for (const route of this.compiled) {
      // Only the most specific template that fits the path counts: DELETE /memory/export is a 405, not id "export".
      if (matchedSpecificity !== undefined && route.specificity < matchedSpecificity) break;
      const m = route.pattern.exec(path);
      if (!m) continue;
      matchedSpecificity = route.specificity;
      if (route.definition.method !== method) {
        allowed.add(route.definition.method);
        continue;
      }
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => {
        try {
          params[name] = decodeURIComponent(m[i + 1]);
        } catch {
          throw new AppError('VALIDATION_ERROR', 422, `Path parameter ${name} is not valid URL encoding`, []);
        }
      });
      return { definition: route.definition, params };
    }
    if (allowed.size > 0) {
      throw new AppError('METHOD_NOT_ALLOWED', 405, `Method ${method} is not allowed on ${path}`, undefined, {
        Allow: [...allowed].sort().join(', '),
      });
    }
    throw new AppError('NOT_FOUND', 404, `No route for ${method} ${path}`);
  }
}
