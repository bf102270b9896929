import type { App } from '../app.ts';
import { createBackup } from '../backup/index.ts';

export const BACKUP_PREFIX = 'backups/';
/** backups kept by the daily job; older ones are deleted after a new one is stored */
export const BACKUP_KEEP = 14;

/**
 * Daily: an encrypted export of the database (shared/backup: JSON lines per table, gzip,
 * AES-256-GCM under a data key from the key ring) to the object store as
 * `backups/memorysync-<time>.msbk`; keeps the newest BACKUP_KEEP. Restore with `memorysync restore`.
 */
export async function runBackup(app: Pick<App, 'db' | 'keyRing' | 'objects' | 'clock'>): Promise<{ key: string; bytes: number; tables: Record<string, number>; pruned: number }> {
  const now = app.clock.now();
  const backup = await createBackup({ db: app.db.kysely, keyRing: app.keyRing, now: () => now });
  const key = `${BACKUP_PREFIX}memorysync-${now.toISOString().replace(/[:.]/g, '-')}.msbk`;
  await app.objects.put(key, backup.bytes, 'application/octet-stream');
  const existing = (await app.objects.list(BACKUP_PREFIX)).filter((k) => k.endsWith('.msbk')).sort();
  const old = existing.slice(0, Math.max(0, existing.length - BACKUP_KEEP));
  if (old.length) await app.objects.delete(old);
  return { key, bytes: backup.bytes.length, tables: backup.tables, pruned: old.length };
}
