import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { DependencyError } from '../../errors.ts';
import type { ObjectStore } from '../../ports/object-store.ts';

export interface FsObjectStoreOptions {
  /** folder that holds the objects; created on first write */
  root: string;
}

/** Partially written files live here until renamed into place; no key may start with it. */
const STAGING_DIR = '.staging';

/**
 * The object store on a local folder: key `a/b/c.json` is the file `<root>/a/b/c.json`. Writes go
 * to a temp file and are renamed into place, so a reader sees the old or the new object, never a
 * partial one. Files are 0600 and folders 0700: objects hold backups and dead letters.
 * Unlike S3, a key cannot be both an object and a "folder" of other keys (`a` and `a/b`).
 */
export function createFsObjectStore(options: FsObjectStoreOptions): ObjectStore {
  const root = resolve(options.root);

  function pathFor(key: string): string {
    const segments = key.split('/');
    const invalid =
      key.length === 0 ||
      key.includes('\0') ||
      key.includes('\\') ||
      /^[a-zA-Z]:/.test(key) ||
      segments.some((s) => s === '' || s === '.' || s === '..') ||
      segments[0] === STAGING_DIR;
    const path = join(root, ...segments);
    // belt and braces: whatever the checks above miss, the path must stay under root
    if (invalid || !path.startsWith(root + sep)) {
      throw new DependencyError('object-store', `invalid object key ${JSON.stringify(key.slice(0, 200))}`);
    }
    return path;
  }

  async function walk(dir: string, out: string[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (isMissing(error)) return;
      throw error;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (dir === root && entry.name === STAGING_DIR) continue;
        await walk(path, out);
      } else if (entry.isFile()) {
        out.push(relative(root, path).split(sep).join('/'));
      }
    }
  }

  /** Removes folders emptied by a delete, up to (not including) the root. */
  async function pruneEmptyParents(path: string): Promise<void> {
    for (let dir = dirname(path); dir.startsWith(root + sep); dir = dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        return;
      }
    }
  }

  return {
    kind: 'fs',
    async put(key, body, _contentType) {
      const path = pathFor(key);
      const staging = join(root, STAGING_DIR);
      await mkdir(staging, { recursive: true, mode: 0o700 });
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const temp = join(staging, `${randomBytes(12).toString('hex')}.tmp`);
      try {
        await writeFile(temp, body, { mode: 0o600 });
        await rename(temp, path);
      } catch (cause) {
        await rm(temp, { force: true });
        throw new DependencyError('object-store', `cannot write object ${key}`, { cause });
      }
    },
    async get(key) {
      try {
        return new Uint8Array(await readFile(pathFor(key)));
      } catch (error) {
        if (isMissing(error) || (error as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
        throw error;
      }
    },
    async list(prefix) {
      // walk only the deepest folder the prefix names, then filter by the full prefix
      const folder = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
      const start = folder ? pathFor(folder) : root;
      const keys: string[] = [];
      await walk(start, keys);
      return keys.filter((k) => k.startsWith(prefix)).sort();
    },
    async delete(keys) {
      for (const key of keys) {
        const path = pathFor(key);
        await rm(path, { force: true });
        await pruneEmptyParents(path);
      }
    },
  };
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
