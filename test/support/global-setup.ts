import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { openPgliteDb } from '#shared/adapters/pglite/pglite-db.ts';
import { migrateToLatest } from '#shared/db/migrator.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgliteTemplate: string;
  }
}

/**
 * Builds, once per run (and reused while the migrations are unchanged), a migrated PGlite data dir that
 * test servers and contract suites load instead of initialising PostgreSQL from scratch each time.
 */
export default async function setup(project: TestProject) {
  const migrationsDir = join(import.meta.dirname, '../../shared/db/migrations');
  const hash = createHash('sha256');
  for (const f of readdirSync(migrationsDir).sort()) hash.update(f).update(readFileSync(join(migrationsDir, f)));
  hash.update(readFileSync(join(import.meta.dirname, '../../shared/db/migrator.ts')));
  const path = join(tmpdir(), `memorysync-pglite-template-${hash.digest('hex').slice(0, 16)}.tar`);
  if (!existsSync(path)) {
    const db = await openPgliteDb();
    await migrateToLatest(db.kysely);
    if (!db.dump) throw new Error('openPgliteDb must expose dump()');
    const dump = await db.dump();
    const tmp = `${path}.${process.pid}`;
    writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
    renameSync(tmp, path);
    await db.close();
  }
  project.provide('pgliteTemplate', path);
}

