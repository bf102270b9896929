import { gunzipSync, gzipSync } from 'node:zlib';
import { sql, type Kysely } from 'kysely';
import { tablesInDependencyOrder, type TableInfo } from '../db/introspect.ts';
import type { KeyRing } from '../ports/key-ring.ts';
import { BACKUP_KEY_CONTEXT, decodeFrames, encodeContainer, readHeader, type BackupHeader } from './backup-format.ts';

export interface BackupDeps {
  db: Kysely<any>;
  keyRing: KeyRing;
  now?: () => Date;
}

export interface BackupProgress {
  (event: { table: string; rows: number; done: number; total: number }): void;
}

export interface BackupResult {
  bytes: Buffer;
  tables: Record<string, number>;
  /** derived tables left out (vector indexes); `memorysync reindex` rebuilds them */
  skipped: string[];
}

const PAGE_ROWS = 1000;
const INSERT_ROWS = 250;

/** Tables with a user-defined column (pgvector's `vector`) hold derived data that reindex rebuilds. */
const isDerived = (t: TableInfo) => t.columns.some((c) => c.dataType === 'USER-DEFINED');

function encodeValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('base64') };
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return value.toString();
  return value;
}

function decodeValue(value: unknown, dataType: string): unknown {
  if (value === null || value === undefined) return null;
  if (dataType === 'bytea') return Buffer.from((value as { $bytes: string }).$bytes, 'base64');
  if (dataType === 'jsonb' || dataType === 'json') return JSON.stringify(value);
  return value;
}

async function appliedMigrations(db: Kysely<any>): Promise<string[]> {
  const rows = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db);
  return rows.rows.map((r) => r.name);
}

/**
 * Every application table as JSON lines (`{"t": table, "r": row}`), gzip-compressed and sealed
 * with a fresh data key from the key ring (the wrapped key travels in the header). Read in one
 * repeatable-read transaction, so the backup is a consistent snapshot. The whole backup is built in
 * memory: this is the operator's portable copy, not a replacement for Aurora snapshots.
 */
export async function createBackup(deps: BackupDeps, onProgress?: BackupProgress): Promise<BackupResult> {
  const lines: string[] = [];
  const tables: Record<string, number> = {};
  const skipped: string[] = [];
  const migrations = await deps.db.transaction().setIsolationLevel('repeatable read').execute(async (trx) => {
    const all = await tablesInDependencyOrder(trx);
    const included = all.filter((t) => !isDerived(t));
    skipped.push(...all.filter(isDerived).map((t) => t.name));
    for (const [i, t] of included.entries()) {
      let count = 0;
      for (let offset = 0; ; offset += PAGE_ROWS) {
        // ctid order is stable inside one snapshot and needs no primary key.
        const page = await sql<Record<string, unknown>>`select * from ${sql.table(t.name)} order by ctid limit ${PAGE_ROWS} offset ${offset}`.execute(trx);
        for (const row of page.rows) {
          lines.push(JSON.stringify({ t: t.name, r: Object.fromEntries(Object.entries(row).map(([k, v]) => [k, encodeValue(v)])) }));
        }
        count += page.rows.length;
        if (page.rows.length < PAGE_ROWS) break;
      }
      tables[t.name] = count;
      onProgress?.({ table: t.name, rows: count, done: i + 1, total: included.length });
    }
    return appliedMigrations(trx);
  });
  lines.push(JSON.stringify({ end: true, tables }));
  const key = await deps.keyRing.generateDataKey(BACKUP_KEY_CONTEXT);
  const header: BackupHeader = {
    format: 'memorysync-backup', version: 1, created_at: (deps.now?.() ?? new Date()).toISOString(),
    key: { context: BACKUP_KEY_CONTEXT, key_ring: deps.keyRing.kind, wrapped: Buffer.from(key.wrapped).toString('base64') },
    migrations,
  };
  const bytes = encodeContainer(header, key.plaintext, gzipSync(Buffer.from(`${lines.join('\n')}\n`, 'utf8')));
  return { bytes, tables, skipped };
}

/**
 * Restores a backup into an empty database of the same or a newer schema, in one transaction
 * (parents before children, serial sequences moved past the restored ids). The key ring must be the
 * one the backup was made with: tenants' data keys inside are wrapped by it too.
 */
export async function restoreBackup(deps: BackupDeps, container: Uint8Array, onProgress?: BackupProgress): Promise<{ tables: Record<string, number>; skipped: string[]; created_at: string }> {
  const { header, body, headerHash } = readHeader(container);
  let dataKey: Uint8Array;
  try {
    dataKey = await deps.keyRing.unwrap(Buffer.from(header.key.wrapped, 'base64'), header.key.context);
  } catch {
    throw new Error(`cannot unwrap the backup key: restore with the key ring the backup was made with (${header.key.key_ring})`);
  }
  const lines = gunzipSync(decodeFrames(body, headerHash, dataKey)).toString('utf8').split('\n').filter(Boolean);
  const end = JSON.parse(lines.pop() ?? '{}') as { end?: boolean; tables?: Record<string, number> };
  if (!end.end || !end.tables) throw new Error('backup has no end record (incomplete)');
  const expected = end.tables;

  const target = await appliedMigrations(deps.db);
  const missing = header.migrations.filter((m) => !target.includes(m));
  if (missing.length) throw new Error(`the database schema is older than the backup; missing migrations: ${missing.join(', ')}`);

  const byTable = new Map<string, Array<Record<string, unknown>>>();
  for (const line of lines) {
    const { t, r } = JSON.parse(line) as { t: string; r: Record<string, unknown> };
    (byTable.get(t) ?? byTable.set(t, []).get(t)!).push(r);
  }
  const restored: Record<string, number> = {};
  const skipped: string[] = [];
  await deps.db.transaction().execute(async (trx) => {
    const tables = await tablesInDependencyOrder(trx);
    const known = new Set(tables.map((t) => t.name));
    skipped.push(...[...byTable.keys()].filter((t) => !known.has(t)));
    for (const t of tables) {
      const rows = byTable.get(t.name);
      if (!rows?.length) continue;
      const existing = await sql<{ n: number }>`select count(*)::int as n from ${sql.table(t.name)}`.execute(trx);
      if (Number(existing.rows[0]?.n ?? 0) > 0) throw new Error(`restore needs an empty database; table ${t.name} has rows`);
    }
    for (const [i, t] of tables.entries()) {
      const rows = byTable.get(t.name) ?? [];
      const columns = new Map(t.columns.map((c) => [c.name, c.dataType]));
      for (let start = 0; start < rows.length; start += INSERT_ROWS) {
        const values = rows.slice(start, start + INSERT_ROWS).map((r) =>
          Object.fromEntries(Object.entries(r).filter(([k]) => columns.has(k)).map(([k, v]) => [k, decodeValue(v, columns.get(k)!)])),
        );
        await trx.insertInto(t.name).values(values).execute();
      }
      for (const c of t.columns.filter((col) => col.serial)) {
        await sql`select setval(pg_get_serial_sequence(${t.name}, ${c.name}), coalesce((select max(${sql.ref(c.name)}) from ${sql.table(t.name)}), 0) + 1, false)`.execute(trx);
      }
      if (rows.length) restored[t.name] = rows.length;
      onProgress?.({ table: t.name, rows: rows.length, done: i + 1, total: tables.length });
    }
    for (const [table, n] of Object.entries(expected)) {
      if ((restored[table] ?? 0) !== n && !skipped.includes(table)) throw new Error(`restored ${restored[table] ?? 0} rows of ${table}, backup says ${n}`);
    }
  });
  return { tables: restored, skipped, created_at: header.created_at };
}
