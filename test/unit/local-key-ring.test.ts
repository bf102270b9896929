import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalKeyRing } from '#shared/adapters/local-keys/local-key-ring.ts';
import { DependencyError } from '#shared/errors.ts';
import { keyRingContract } from '../contract/key-ring.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'memorysync-local-keys-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

keyRingContract('local (in-memory master key)', () => createLocalKeyRing({ masterKey: randomBytes(32) }));
keyRingContract('local (master key file)', () =>
  createLocalKeyRing({ masterKeyPath: join(dir, `contract-${randomBytes(4).toString('hex')}`, 'master.key') }));

describe('local key ring', () => {
  it('creates a 32-byte master key file with mode 0600 on first use', async () => {
    const path = join(dir, 'first-use', 'master.key');
    const ring = createLocalKeyRing({ masterKeyPath: path });
    await ring.generateDataKey('tenant-a');
    const info = await stat(path);
    expect(info.mode & 0o777).toBe(0o600);
    expect((await readFile(path)).length).toBe(32);
  });

  it('unwraps keys after a restart because the master key file is reused', async () => {
    const path = join(dir, 'restart', 'master.key');
    const key = await createLocalKeyRing({ masterKeyPath: path }).generateDataKey('tenant-a');
    const restarted = createLocalKeyRing({ masterKeyPath: path });
    expect(Buffer.from(await restarted.unwrap(key.wrapped, 'tenant-a')).equals(Buffer.from(key.plaintext))).toBe(true);
  });

  it('creates one master key when two rings start at the same time', async () => {
    const path = join(dir, 'race', 'master.key');
    const [a, b] = [createLocalKeyRing({ masterKeyPath: path }), createLocalKeyRing({ masterKeyPath: path })];
    const [keyA, keyB] = await Promise.all([a.generateDataKey('t'), b.generateDataKey('t')]);
    expect(Buffer.from(await b.unwrap(keyA.wrapped, 't')).equals(Buffer.from(keyA.plaintext))).toBe(true);
    expect(Buffer.from(await a.unwrap(keyB.wrapped, 't')).equals(Buffer.from(keyB.plaintext))).toBe(true);
  });

  it('cannot unwrap a key wrapped under a different master key', async () => {
    const key = await createLocalKeyRing({ masterKey: randomBytes(32) }).generateDataKey('tenant-a');
    await expect(createLocalKeyRing({ masterKey: randomBytes(32) }).unwrap(key.wrapped, 'tenant-a'))
      .rejects.toBeInstanceOf(DependencyError);
  });

  it.skipIf(process.platform === 'win32')('refuses a master key file readable by group or others', async () => {
    const path = join(dir, 'loose.key');
    await writeFile(path, randomBytes(32), { mode: 0o600 });
    await chmod(path, 0o644);
    await expect(createLocalKeyRing({ masterKeyPath: path }).generateDataKey('tenant-a')).rejects.toThrow(/chmod 600/);
  });

  it('refuses a master key file of the wrong length', async () => {
    const path = join(dir, 'short.key');
    await writeFile(path, randomBytes(16), { mode: 0o600 });
    await expect(createLocalKeyRing({ masterKeyPath: path }).generateDataKey('tenant-a')).rejects.toThrow(/32 bytes/);
  });

  it('rejects an in-memory master key that is not 32 bytes', () => {
    expect(() => createLocalKeyRing({ masterKey: randomBytes(31) })).toThrow(/32 bytes/);
  });
});
