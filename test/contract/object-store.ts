import { describe, expect, it } from 'vitest';
import type { ObjectStore } from '#shared/ports/object-store.ts';

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8'));

/**
 * The ObjectStore contract: `/`-separated keys, byte-exact round trips, prefix listing in key
 * order, missing keys read as `undefined`, deletes that ignore missing keys. Each call of the
 * factory must return an empty store.
 */
export function objectStoreContract(name: string, factory: () => Promise<ObjectStore> | ObjectStore) {
  describe(`ObjectStore contract: ${name}`, () => {
    it('reads back the exact bytes that were written', async () => {
      const store = await factory();
      const bytes = Uint8Array.from([0, 1, 2, 250, 255, 10, 13]);
      await store.put('backups/tenant-1/blob.bin', bytes, 'application/octet-stream');
      expect(Buffer.from((await store.get('backups/tenant-1/blob.bin'))!).equals(Buffer.from(bytes))).toBe(true);
    });

    it('stores strings as UTF-8', async () => {
      const store = await factory();
      await store.put('dead-letters/embedding/task-1.json', '{"note":"café ☕ 東京"}', 'application/json');
      expect(text(await store.get('dead-letters/embedding/task-1.json'))).toBe('{"note":"café ☕ 東京"}');
    });

    it('answers undefined for a key that was never written', async () => {
      const store = await factory();
      expect(await store.get('nothing/here.json')).toBeUndefined();
    });

    it('replaces an object written twice', async () => {
      const store = await factory();
      await store.put('state/cursor.json', 'first');
      await store.put('state/cursor.json', 'second');
      expect(text(await store.get('state/cursor.json'))).toBe('second');
    });

    it('lists keys under a prefix in key order, across nested folders', async () => {
      const store = await factory();
      for (const key of ['backups/t2/b.json', 'backups/t1/z.json', 'backups/t1/a/deep.json', 'other/x.json', 'backupsX.json']) {
        await store.put(key, key);
      }
      expect(await store.list('backups/')).toEqual(['backups/t1/a/deep.json', 'backups/t1/z.json', 'backups/t2/b.json']);
      expect(await store.list('backups/t1/')).toEqual(['backups/t1/a/deep.json', 'backups/t1/z.json']);
      expect(await store.list('backups')).toEqual([
        'backups/t1/a/deep.json',
        'backups/t1/z.json',
        'backups/t2/b.json',
        'backupsX.json',
      ]);
      expect(await store.list('missing/')).toEqual([]);
    });

    it('treats a list prefix as a string prefix, not only a folder', async () => {
      const store = await factory();
      await store.put('exports/2024-01.json', 'a');
      await store.put('exports/2024-02.json', 'b');
      await store.put('exports/2025-01.json', 'c');
      expect(await store.list('exports/2024-')).toEqual(['exports/2024-01.json', 'exports/2024-02.json']);
    });

    it('deletes the given keys, ignores missing ones and keeps the rest', async () => {
      const store = await factory();
      await store.put('dlq/a.json', 'a');
      await store.put('dlq/b.json', 'b');
      await store.put('dlq/c.json', 'c');
      await store.delete(['dlq/a.json', 'dlq/c.json', 'dlq/never-written.json']);
      expect(await store.get('dlq/a.json')).toBeUndefined();
      expect(text(await store.get('dlq/b.json'))).toBe('b');
      expect(await store.list('dlq/')).toEqual(['dlq/b.json']);
      await store.delete([]);
    });
  });
}
