import { AppError } from '../../errors.ts';

/**
 * SCIM filters (RFC 7644 §3.4.2.2): attribute comparisons (eq ne co sw ew gt ge lt le pr), `and`,
 * `or`, `not (…)`, grouping, and value paths such as `emails[type eq "work"]`. Parsed once into a
 * tree and evaluated against SCIM resources (plain JSON), with attribute names case-insensitive.
 */
export type FilterNode =
  | { kind: 'compare'; path: string[]; op: CompareOp; value: string | number | boolean | null }
  | { kind: 'present'; path: string[] }
  | { kind: 'and' | 'or'; left: FilterNode; right: FilterNode }
  | { kind: 'not'; inner: FilterNode }
  | { kind: 'valuePath'; path: string[]; filter: FilterNode; sub?: string };

type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
const COMPARE_OPS = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);
/** Attributes whose values compare case-sensitively (RFC 7643 caseExact: id, externalId, meta). */
const CASE_EXACT = new Set(['id', 'externalid', 'meta.version']);

export const invalidFilter = (message: string) => new AppError('invalidFilter', 400, message);

type Token = { t: 'word' | 'string' | '(' | ')' | '[' | ']'; v: string };

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i];
    if (/\s/.test(c)) {
      i++;
    } else if ('()[]'.includes(c)) {
      tokens.push({ t: c as '(' | ')' | '[' | ']', v: c });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < input.length && input[j] !== '"') j += input[j] === '\\' ? 2 : 1;
      if (j >= input.length) throw invalidFilter('Unterminated string in filter');
      try {
        tokens.push({ t: 'string', v: JSON.parse(input.slice(i, j + 1)) as string });
      } catch {
        throw invalidFilter('Invalid string literal in filter');
      }
      i = j + 1;
    } else {
      let j = i;
      while (j < input.length && !/[\s()[\]"]/.test(input[j])) j++;
      tokens.push({ t: 'word', v: input.slice(i, j) });
      i = j;
    }
  }
  return tokens;
}

/** `urn:…:User:name.givenName` and `name.givenName` both become ['name', 'givenName']; names compare case-insensitively. */
export function attributePath(raw: string): string[] {
  let path = raw;
  if (/^urn:/i.test(path)) {
    const core = /^urn:ietf:params:scim:schemas:core:2\.0:(?:User|Group):/i.exec(path);
    if (core) path = path.slice(core[0].length);
    else {
      const i = path.lastIndexOf(':');
      return [path.slice(0, i), ...path.slice(i + 1).split('.')];
    }
  }
  if (!/^[A-Za-z$][\w$-]*(\.[A-Za-z$][\w$-]*)*$/.test(path)) throw invalidFilter(`Invalid attribute path: ${raw}`);
  return path.split('.');
}

export function parseFilter(input: string): FilterNode {
  const tokens = tokenize(input);
  let pos = 0;
  const peekWord = () => (tokens[pos]?.t === 'word' ? tokens[pos].v.toLowerCase() : undefined);
  const expect = (t: Token['t']) => {
    if (tokens[pos]?.t !== t) throw invalidFilter(`Expected ${t} in filter`);
    pos++;
  };

  const parseOr = (): FilterNode => {
    let left = parseAnd();
    while (peekWord() === 'or') {
      pos++;
      left = { kind: 'or', left, right: parseAnd() };
    }
    return left;
  };
  const parseAnd = (): FilterNode => {
    let left = parseUnary();
    while (peekWord() === 'and') {
      pos++;
      left = { kind: 'and', left, right: parseUnary() };
    }
    return left;
  };
  const parseUnary = (): FilterNode => {
    if (peekWord() === 'not' && tokens[pos + 1]?.t === '(') {
      pos++;
      expect('(');
      const inner = parseOr();
      expect(')');
      return { kind: 'not', inner };
    }
    if (tokens[pos]?.t === '(') {
      pos++;
      const inner = parseOr();
      expect(')');
      return inner;
    }
    return parseAttributeExpression();
  };
  const parseAttributeExpression = (): FilterNode => {
    const tok = tokens[pos];
    if (tok?.t !== 'word') throw invalidFilter('Expected an attribute path in filter');
    pos++;
    const path = attributePath(tok.v);
    if (tokens[pos]?.t === '[') {
      pos++;
      const filter = parseOr();
      expect(']');
      // `emails[type eq "work"].value` style sub-attribute after the bracket
      let sub: string | undefined;
      if (tokens[pos]?.t === 'word' && tokens[pos].v.startsWith('.')) {
        sub = tokens[pos].v.slice(1);
        pos++;
      }
      return { kind: 'valuePath', path, filter, sub };
    }
    const op = peekWord();
    if (op === 'pr') {
      pos++;
      return { kind: 'present', path };
    }
    if (!op || !COMPARE_OPS.has(op)) throw invalidFilter(`Unknown operator in filter: ${tokens[pos]?.v ?? 'end of filter'}`);
    pos++;
    const valueTok = tokens[pos++];
    if (!valueTok) throw invalidFilter('Expected a comparison value in filter');
    let value: string | number | boolean | null;
    if (valueTok.t === 'string') value = valueTok.v;
    else if (valueTok.t === 'word' && /^(true|false|null)$/i.test(valueTok.v)) value = JSON.parse(valueTok.v.toLowerCase()) as boolean | null;
    else if (valueTok.t === 'word' && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(valueTok.v)) value = Number(valueTok.v);
    else throw invalidFilter(`Invalid comparison value in filter: ${valueTok.v}`);
    return { kind: 'compare', path, op: op as CompareOp, value };
  };

  if (tokens.length === 0) throw invalidFilter('Empty filter');
  const tree = parseOr();
  if (pos !== tokens.length) throw invalidFilter(`Unexpected ${tokens[pos].v} in filter`);
  return tree;
}

/** Case-insensitive property read. */
export function getKey(obj: unknown, key: string): unknown {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
  const wanted = key.toLowerCase();
  const found = Object.keys(obj).find((k) => k.toLowerCase() === wanted);
  return found === undefined ? undefined : (obj as Record<string, unknown>)[found];
}

/** Every value at a path; multi-valued attributes fan out, and a complex multi-valued attribute compares by its `value`. */
function valuesAt(resource: unknown, path: string[]): unknown[] {
  let current: unknown[] = [resource];
  for (const segment of path) {
    current = current.flatMap((v) => {
      const next = getKey(v, segment);
      return Array.isArray(next) ? next : next === undefined ? [] : [next];
    });
  }
  return current.map((v) => (v && typeof v === 'object' && !Array.isArray(v) && getKey(v, 'value') !== undefined ? getKey(v, 'value') : v));
}

function compare(actual: unknown, op: CompareOp, expected: string | number | boolean | null, caseExact: boolean): boolean {
  if (expected === null) return op === 'eq' ? actual === null || actual === undefined : op === 'ne' ? actual !== null && actual !== undefined : false;
  if (typeof expected === 'boolean' || typeof expected === 'number') {
    if (op === 'eq') return actual === expected;
    if (op === 'ne') return actual !== expected;
    if (typeof expected === 'number' && typeof actual === 'number') return op === 'gt' ? actual > expected : op === 'ge' ? actual >= expected : op === 'lt' ? actual < expected : op === 'le' ? actual <= expected : false;
    return false;
  }
  if (typeof actual !== 'string') return op === 'ne';
  const a = caseExact ? actual : actual.toLowerCase();
  const e = caseExact ? expected : expected.toLowerCase();
  switch (op) {
    case 'eq': return a === e;
    case 'ne': return a !== e;
    case 'co': return a.includes(e);
    case 'sw': return a.startsWith(e);
    case 'ew': return a.endsWith(e);
    case 'gt': return a > e;
    case 'ge': return a >= e;
    case 'lt': return a < e;
    case 'le': return a <= e;
  }
}

export function matchesFilter(resource: unknown, node: FilterNode): boolean {
  switch (node.kind) {
    case 'and': return matchesFilter(resource, node.left) && matchesFilter(resource, node.right);
    case 'or': return matchesFilter(resource, node.left) || matchesFilter(resource, node.right);
    case 'not': return !matchesFilter(resource, node.inner);
    case 'present': return valuesAt(resource, node.path).some((v) => v !== null && v !== '' && !(Array.isArray(v) && v.length === 0));
    case 'compare': {
      const values = valuesAt(resource, node.path);
      const caseExact = CASE_EXACT.has(node.path.join('.').toLowerCase());
      if (node.op === 'ne') return values.length === 0 ? true : values.every((v) => compare(v, 'ne', node.value, caseExact));
      return values.some((v) => compare(v, node.op, node.value, caseExact));
    }
    case 'valuePath': {
      const container = node.path.reduce<unknown[]>((acc, seg) => acc.flatMap((v) => {
        const next = getKey(v, seg);
        return Array.isArray(next) ? next : next === undefined ? [] : [next];
      }), [resource]);
      return container.some((element) => matchesFilter(element, node.filter));
    }
  }
}
