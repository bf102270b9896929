import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFsObjectStore } from '#shared/adapters/fs-objects/fs-object-store.ts';
import { DependencyError } from '#shared/errors.ts';
import { objectStoreContract } from '../contract/object-store.ts';

let dir: string;
let n = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'memorysync-fs-objects-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
const freshRoot = () => join(dir, `store-${n++}`);

objectStoreContract('fs-objects', () => createFsObjectStore({ root: freshRoot() }));

describe('fs object store', () => {
  it('writes objects with mode 0600 inside folders with mode 0700', async () => {
    const root = freshRoot();
    const store = createFsObjectStore({ root });
    await store.put('backups/t1/dump.json', '{}');
    expect((await stat(join(root, 'backups/t1/dump.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(root, 'backups/t1'))).mode & 0o777).toBe(0o700);
  });

  it.each([
    ['parent traversal', '../escape.json'],
    ['traversal in the middle', 'a/../../escape.json'],
    ['absolute path', '/etc/passwd'],
    ['NUL byte', 'a\0b.json'],
    ['empty key', ''],
    ['empty segment', 'a//b.json'],
    ['dot segment', 'a/./b.json'],
    ['backslash', 'a\\..\\b.json'],
    ['drive letter', 'C:/x.json'],
    ['staging folder', '.staging/x.tmp'],
  ])('rejects a key with %s', async (_label, key) => {
    const store = createFsObjectStore({ root: freshRoot() });
    await expect(store.put(key, 'x')).rejects.toBeInstanceOf(DependencyError);
    await expect(store.get(key)).rejects.toBeInstanceOf(DependencyError);
    await expect(store.delete([key])).rejects.toBeInstanceOf(DependencyError);
  });

  it('never writes outside its root', async () => {
    const root = freshRoot();
    const store = createFsObjectStore({ root });
    await store.put('inside.json', 'x');
    await expect(store.put('../outside.json', 'x')).rejects.toThrow();
    expect(await readdir(dir)).not.toContain('outside.json');
  });

  it('leaves no temporary files behind and does not list them', async () => {
    const root = freshRoot();
    const store = createFsObjectStore({ root });
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(`k/${i % 3}.json`, `v${i}`)));
    expect(await readdir(join(root, '.staging'))).toEqual([]);
    expect(await store.list('')).toEqual(['k/0.json', 'k/1.json', 'k/2.json']);
  });

  it('removes folders that a delete leaves empty', async () => {
    const root = freshRoot();
    const store = createFsObjectStore({ root });
    await store.put('a/b/c.json', 'x');
    await store.delete(['a/b/c.json']);
    expect((await readdir(root)).sort()).toEqual(['.staging']);
  });
});
