export { createBackup, restoreBackup } from './backup.ts';
export type { BackupDeps, BackupProgress, BackupResult } from './backup.ts';
