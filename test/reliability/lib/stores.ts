import { sql, type Kysely } from 'kysely';
import { tablesInDependencyOrder } from '../../../shared/db/introspect.ts';

/**
 * Rows per table that belong to one tenant: every table with a `tenant_id` column (tables added by
 * later migrations included), plus the tenant row itself. Tables with no row are left out.
 */
export async function tenantFootprint(db: Kysely<any>, tenantId: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of await tablesInDependencyOrder(db)) {
    const column = t.name === 'tenants' ? 'id' : t.columns.some((c) => c.name === 'tenant_id') ? 'tenant_id' : null;
    if (!column) continue;
    const row = await sql<{ n: string }>`select count(*)::text as n from ${sql.table(t.name)} where ${sql.ref(column)} = ${tenantId}`.execute(db);
    const n = Number(row.rows[0]?.n ?? 0);
    if (n) out[t.name] = n;
  }
  return out;
}

/** Rows of every table that mention a value anywhere (any text-like column), for leftovers after a deletion. */
export async function rowsMentioning(db: Kysely<any>, needle: string, skip: Set<string> = new Set()): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of await tablesInDependencyOrder(db)) {
    if (skip.has(t.name)) continue;
    const textual = t.columns.filter((c) => ['text', 'character varying', 'jsonb', 'json', 'ARRAY'].includes(c.dataType));
    if (!textual.length) continue;
    const conds = textual.map((c) => sql`position(${needle} in ${sql.ref(c.name)}::text) > 0`);
    const row = await sql<{ n: string }>`select count(*)::text as n from ${sql.table(t.name)} where ${sql.join(conds, sql` or `)}`.execute(db);
    const n = Number(row.rows[0]?.n ?? 0);
    if (n) out[t.name] = n;
  }
  return out;
}
