import { AppError } from '../../errors.ts';
import { attributePath, getKey, matchesFilter, parseFilter, type FilterNode } from './scim-filter.ts';

export interface PatchOperation {
  op: string;
  path?: string;
  value?: unknown;
}

type Json = Record<string, unknown>;

const invalidPath = (message: string) => new AppError('invalidPath', 400, message);
const noTarget = (message: string) => new AppError('noTarget', 400, message);
const invalidValue = (message: string) => new AppError('invalidValue', 400, message);

const isObject = (v: unknown): v is Json => !!v && typeof v === 'object' && !Array.isArray(v);

/** The actual (cased) key of `name` in `obj`, or `name` itself when absent. */
function keyOf(obj: Json, name: string): string {
  return Object.keys(obj).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
}

interface ParsedPath {
  /** attribute names from the root; the first may be an extension URN */
  attrs: string[];
  filter?: FilterNode;
  /** sub-attribute after a value filter: `emails[type eq "work"].value` */
  sub?: string;
}

function parsePath(raw: string): ParsedPath {
  const bracket = raw.indexOf('[');
  if (bracket < 0) return { attrs: attributePath(raw) };
  const close = raw.lastIndexOf(']');
  if (close < bracket) throw invalidPath(`Invalid path: ${raw}`);
  const rest = raw.slice(close + 1);
  if (rest && !/^\.[A-Za-z][\w$-]*$/.test(rest)) throw invalidPath(`Invalid path: ${raw}`);
  try {
    return { attrs: attributePath(raw.slice(0, bracket)), filter: parseFilter(raw.slice(bracket + 1, close)), sub: rest ? rest.slice(1) : undefined };
  } catch (err) {
    throw err instanceof AppError ? invalidPath(`Invalid path filter: ${err.message}`) : err;
  }
}

/** The object holding the last attribute of the path, created on the way when `create` is set. */
function parentOf(resource: Json, attrs: string[], create: boolean): Json | undefined {
  let current: Json = resource;
  for (const name of attrs.slice(0, -1)) {
    const key = keyOf(current, name);
    if (!isObject(current[key])) {
      if (!create) return undefined;
      current[key] = {};
    }
    current = current[key] as Json;
  }
  return current;
}

/** add: multi-valued attributes gain values (no duplicates), complex ones merge, simple ones are set. */
function addValue(target: Json, key: string, value: unknown): void {
  const existing = target[key];
  if (Array.isArray(existing) || (Array.isArray(value) && existing === undefined)) {
    const list = Array.isArray(existing) ? existing : [];
    for (const v of Array.isArray(value) ? value : [value]) {
      if (!list.some((e) => JSON.stringify(e) === JSON.stringify(v))) list.push(v);
    }
    target[key] = list;
  } else if (isObject(existing) && isObject(value)) {
    for (const [k, v] of Object.entries(value)) existing[keyOf(existing, k)] = v;
  } else {
    target[key] = value;
  }
}

function applyWithoutPath(resource: Json, op: 'add' | 'replace', value: unknown): void {
  if (!isObject(value)) throw invalidValue(`${op} without a path needs an object value`);
  for (const [name, v] of Object.entries(value)) {
    const key = keyOf(resource, name);
    if (op === 'add') addValue(resource, key, v);
    else resource[key] = v;
  }
}

function applyFiltered(resource: Json, op: 'add' | 'replace' | 'remove', path: ParsedPath, value: unknown): void {
  const parent = parentOf(resource, path.attrs, false);
  const key = parent ? keyOf(parent, path.attrs[path.attrs.length - 1]) : undefined;
  const list = parent && key ? parent[key] : undefined;
  const matches = Array.isArray(list) ? list.filter((e) => matchesFilter(e, path.filter!)) : [];
  if (matches.length === 0) {
    if (op === 'remove') return; // removing what is not there leaves the resource as it is
    throw noTarget('The path filter matched no values');
  }
  if (op === 'remove') {
    if (path.sub) for (const m of matches) if (isObject(m)) delete m[keyOf(m, path.sub)];
    if (!path.sub) parent![key!] = (list as unknown[]).filter((e) => !matches.includes(e));
    return;
  }
  for (const m of matches) {
    if (!isObject(m)) continue;
    if (path.sub) m[keyOf(m, path.sub)] = value;
    else if (isObject(value)) for (const [k, v] of Object.entries(value)) m[keyOf(m, k)] = v;
    else throw invalidValue('A filtered path without a sub-attribute needs an object value');
  }
}

/**
 * Applies a SCIM PatchOp (RFC 7644 §3.5.2) to a resource in its JSON form and returns the new
 * resource; the caller validates the result and persists it. Operation names are case-insensitive
 * (Azure AD sends `Replace`); everything happens on a copy, so a failing operation changes nothing.
 */
export function applyPatch(original: Json, operations: PatchOperation[]): Json {
  const resource = structuredClone(original);
  for (const operation of operations) {
    const op = operation.op.toLowerCase();
    if (op !== 'add' && op !== 'replace' && op !== 'remove') throw invalidValue(`Unknown patch op: ${operation.op}`);
    if (!operation.path) {
      if (op === 'remove') throw noTarget('remove needs a path');
      applyWithoutPath(resource, op, operation.value);
      continue;
    }
    const path = parsePath(operation.path);
    if (path.filter) {
      applyFiltered(resource, op, path, operation.value);
      continue;
    }
    const parent = parentOf(resource, path.attrs, op !== 'remove');
    const key = parent ? keyOf(parent, path.attrs[path.attrs.length - 1]) : undefined;
    if (op === 'remove') {
      if (!parent || !key) continue;
      // Azure AD removes members by sending their values: remove only those elements.
      if (Array.isArray(parent[key]) && operation.value !== undefined) {
        const drop = (Array.isArray(operation.value) ? operation.value : [operation.value]).map((v) => (isObject(v) ? getKey(v, 'value') : v));
        parent[key] = (parent[key] as unknown[]).filter((e) => !drop.includes(isObject(e) ? getKey(e, 'value') : e));
      } else {
        delete parent[key];
      }
      continue;
    }
    if (operation.value === undefined) throw invalidValue(`${op} needs a value`);
    if (op === 'add') addValue(parent!, key!, operation.value);
    else parent![key!] = operation.value;
  }
  return resource;
}
