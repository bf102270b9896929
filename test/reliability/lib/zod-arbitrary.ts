import fc from 'fast-check';
import type { z } from 'zod';

/** Strings that have broken parsers, databases and loggers before. */
export const HOSTILE_STRINGS = [
  '\uD800', 'a\uDFFFb', '\uDBFF\uDFFF', 'nul\u0000byte', '\u0000', '\u202Eevil.exe\u202C', 'مرحبا بالعالم', 'שלום\u200F', '😀👩‍👩‍👧‍👦🏳️‍🌈',
  'e\u0301\u0301\u0301', '\uFEFFbom', '\u2028\u2029', "'; drop table memories; --", '" or "1"="1', '{{7*7}}${7*7}', '<script>alert(1)</script>',
  '../../../../etc/passwd', '%00%2e%2e%2f', '\\\\?\\C:\\', 'A'.repeat(70_000), ' ', '', '\t\n\r', '-1', '1e309', 'NaN', 'null', 'true', '0x10', '９９',
];

const lone = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
/** any UTF-16 string, lone surrogates included */
export const anyUtf16 = fc.string({ unit: lone, maxLength: 40 });
export const hostileString = fc.oneof(fc.constantFrom(...HOSTILE_STRINGS), anyUtf16, fc.string({ unit: 'grapheme', maxLength: 60 }));

type Def = { type: string; [k: string]: any };
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

function lengthBounds(def: Def): { min?: number; max?: number } {
  const out: { min?: number; max?: number } = {};
  for (const c of (def.checks ?? []) as Array<{ _zod: { def: Record<string, any> } }>) {
    const d = c._zod.def;
    if (d.check === 'min_length') out.min = d.minimum;
    if (d.check === 'max_length') out.max = d.maximum;
    if (d.check === 'length_equals') out.min = out.max = d.length;
    if (d.check === 'greater_than') out.min = Math.ceil(d.value + (d.inclusive ? 0 : 1e-9));
    if (d.check === 'less_than') out.max = Math.floor(d.value - (d.inclusive ? 0 : 1e-9));
  }
  return out;
}

function stringFor(def: Def): fc.Arbitrary<string> {
  const { min = 0, max } = lengthBounds(def);
  const cap = Math.min(max ?? 80, Math.max(min, 80));
  if (def.format === 'email') return fc.emailAddress();
  if (def.format === 'uuid' || def.format === 'guid') return fc.uuid();
  if (def.format === 'url') return fc.webUrl();
  if (def.format === 'datetime') return fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }).map((d) => d.toISOString());
  const checks = (def.checks ?? []) as Array<{ _zod: { def: Record<string, any> } }>;
  const pattern = checks.map((c) => c._zod.def.pattern).find(Boolean) as RegExp | undefined;
  if (pattern && /\\d/.test(pattern.source) && /^\^?\\d\+?\$?$/.test(pattern.source.replace(/[()]/g, ''))) return fc.nat({ max: 1_000_000 }).map(String);
  return fc.string({ minLength: Math.min(min, cap), maxLength: cap });
}

/**
 * An arbitrary for values of a zod schema, built from its definition: mostly valid values (so the
 * request gets past validation into the handler), with a share of hostile strings in string slots.
 */
export function arbitraryFor(schema: z.ZodType, depth = 0): fc.Arbitrary<unknown> {
  const def = defOf(schema);
  if (depth > 6) return fc.constant(null);
  switch (def.type) {
    case 'string': return fc.oneof({ weight: 4, arbitrary: stringFor(def) }, { weight: 1, arbitrary: hostileString });
    case 'number': case 'int': {
      const { min, max } = lengthBounds(def);
      const isInt = def.type === 'int' || (def.checks ?? []).some((c: any) => c._zod.def.format === 'safeint' || c._zod.def.check === 'number_format');
      return isInt || min !== undefined || max !== undefined ? fc.integer({ min: min ?? -1000, max: max ?? 1_000_000 }) : fc.double({ noNaN: true, noDefaultInfinity: true });
    }
    case 'bigint': return fc.integer();
    case 'boolean': return fc.boolean();
    case 'null': return fc.constant(null);
    case 'undefined': case 'void': return fc.constant(undefined);
    case 'date': return fc.date({ noInvalidDate: true }).map((d) => d.toISOString());
    case 'literal': return fc.constantFrom(...(def.values as unknown[]));
    case 'enum': return fc.constantFrom(...Object.values(def.entries as Record<string, unknown>));
    case 'optional': return fc.option(arbitraryFor(def.innerType, depth + 1), { nil: undefined });
    case 'nullable': return fc.option(arbitraryFor(def.innerType, depth + 1), { nil: null });
    case 'default': case 'prefault': case 'catch': case 'readonly': case 'nonoptional': return arbitraryFor(def.innerType, depth + 1);
    case 'pipe': return arbitraryFor(defOf(def.in).type === 'transform' ? def.out : def.in, depth + 1);
    case 'lazy': return arbitraryFor(def.getter(), depth + 1);
    case 'array': {
      const { min = 0, max } = lengthBounds(def);
      return fc.array(arbitraryFor(def.element, depth + 1), { minLength: min, maxLength: Math.min(max ?? 5, Math.max(min, 5)) });
    }
    case 'tuple': return fc.tuple(...(def.items as z.ZodType[]).map((i) => arbitraryFor(i, depth + 1)));
    case 'union': return fc.oneof(...(def.options as z.ZodType[]).map((o) => arbitraryFor(o, depth + 1)));
    case 'intersection': return fc.tuple(arbitraryFor(def.left, depth + 1), arbitraryFor(def.right, depth + 1)).map(([a, b]) => (isObject(a) && isObject(b) ? { ...a, ...b } : a));
    case 'record': return fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), arbitraryFor(def.valueType, depth + 1), { maxKeys: 4 });
    case 'object': {
      const shape = def.shape as Record<string, z.ZodType>;
      const entries = Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, arbitraryFor(v, depth + 1)]));
      return fc.record(entries, { requiredKeys: Object.keys(shape).filter((k) => !['optional', 'default', 'prefault'].includes(defOf(shape[k]).type)) });
    }
    default: return jsonValue(depth);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const jsonValue = (depth = 0): fc.Arbitrary<unknown> =>
  depth > 3 ? fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null)) : fc.jsonValue({ maxDepth: 3 });

/**
 * Turns a (mostly valid) value into one the schema rejects: wrong types, missing required fields,
 * out-of-range numbers, unknown shapes. The caller still checks with safeParse.
 */
export function mutateInvalid(value: unknown): fc.Arbitrary<unknown> {
  const wrong = fc.oneof(fc.constant(null), fc.integer(), fc.boolean(), fc.constant([]), fc.constant({}), fc.constant(1e309), fc.string(), fc.constant('x'.repeat(100_001)), fc.constant(-1));
  if (isObject(value) && Object.keys(value).length) {
    const keys = Object.keys(value);
    return fc.oneof(
      fc.tuple(fc.constantFrom(...keys), wrong).map(([k, w]) => ({ ...value, [k]: w })),
      fc.constantFrom(...keys).map((k) => {
        const { [k]: _gone, ...rest } = value;
        return rest;
      }),
      wrong,
      fc.constant([value]),
    );
  }
  return wrong;
}
