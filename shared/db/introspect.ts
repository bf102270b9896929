import { sql, type Kysely } from 'kysely';

/** Kysely's own bookkeeping; never backed up, restored or deleted by tenant. */
export const MIGRATION_TABLES = new Set(['kysely_migration', 'kysely_migration_lock']);

export interface TableInfo {
  name: string;
  columns: Array<{ name: string; dataType: string; serial: boolean }>;
}

/**
 * The application tables of the current schema, parents before children (by foreign keys), so a
 * restore can insert in this order and a deletion can walk it backwards. Tables other engineers add
 * later are picked up without a list to maintain.
 */
export async function tablesInDependencyOrder(db: Kysely<any>): Promise<TableInfo[]> {
  const columns = await sql<{ table_name: string; column_name: string; data_type: string; column_default: string | null }>`
    select c.table_name, c.column_name, c.data_type, c.column_default
    from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
    where c.table_schema = current_schema() and t.table_type = 'BASE TABLE'
    order by c.table_name, c.ordinal_position`.execute(db);
  const edges = await sql<{ child: string; parent: string }>`
    select cl.relname as child, pl.relname as parent
    from pg_constraint c
    join pg_class cl on cl.oid = c.conrelid
    join pg_class pl on pl.oid = c.confrelid
    where c.contype = 'f' and c.connamespace = (select oid from pg_namespace where nspname = current_schema())`.execute(db);

  const tables = new Map<string, TableInfo>();
  for (const c of columns.rows) {
    if (MIGRATION_TABLES.has(c.table_name)) continue;
    const t = tables.get(c.table_name) ?? { name: c.table_name, columns: [] };
    t.columns.push({ name: c.column_name, dataType: c.data_type, serial: (c.column_default ?? '').startsWith('nextval(') });
    tables.set(c.table_name, t);
  }
  const parents = new Map<string, Set<string>>();
  for (const e of edges.rows) {
    if (e.child === e.parent || !tables.has(e.child) || !tables.has(e.parent)) continue;
    (parents.get(e.child) ?? parents.set(e.child, new Set()).get(e.child)!).add(e.parent);
  }
  const ordered: TableInfo[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string) => {
    if (state.get(name) === 'done' || state.get(name) === 'visiting') return; // a cycle is broken arbitrarily
    state.set(name, 'visiting');
    for (const p of [...(parents.get(name) ?? [])].sort()) visit(p);
    state.set(name, 'done');
    ordered.push(tables.get(name)!);
  };
  for (const name of [...tables.keys()].sort()) visit(name);
  return ordered;
}
