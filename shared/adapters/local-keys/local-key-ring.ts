import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DependencyError } from '../../errors.ts';
import type { DataKey, KeyRing } from '../../ports/key-ring.ts';

export type LocalKeyRingOptions =
  /** a 32-byte key file, created with mode 0600 on first use */
  | { masterKeyPath: string }
  /** an in-memory master key (tests) */
  | { masterKey: Uint8Array };

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** first byte of every wrapped key, so the format can change without guessing */
const FORMAT_V1 = 1;

/**
 * Envelope encryption without a KMS: data keys are wrapped with AES-256-GCM under a local master
 * key, with the tenant id as additional authenticated data, so a wrapped key only unwraps under
 * the context it was generated for. Wrapped layout: version(1) | iv(12) | tag(16) | ciphertext(32).
 */
export function createLocalKeyRing(options: LocalKeyRingOptions): KeyRing {
  let masterKey: Promise<Buffer> | undefined;
  if ('masterKey' in options) {
    if (options.masterKey.byteLength !== KEY_BYTES) throw new Error(`master key must be ${KEY_BYTES} bytes`);
    masterKey = Promise.resolve(Buffer.from(options.masterKey));
  }
  const master = () => (masterKey ??= loadOrCreateMasterKey((options as { masterKeyPath: string }).masterKeyPath));

  return {
    kind: 'local',
    async generateDataKey(context: string): Promise<DataKey> {
      const plaintext = randomBytes(KEY_BYTES);
      const wrapped = wrap(await master(), plaintext, context);
      return { plaintext: new Uint8Array(plaintext), wrapped };
    },
    async unwrap(wrapped: Uint8Array, context: string): Promise<Uint8Array> {
      return unwrapKey(await master(), wrapped, context);
    },
  };
}

function wrap(master: Buffer, plaintext: Buffer, context: string): Uint8Array {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', master, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return new Uint8Array(Buffer.concat([Buffer.of(FORMAT_V1), iv, cipher.getAuthTag(), ciphertext]));
}

function unwrapKey(master: Buffer, wrapped: Uint8Array, context: string): Uint8Array {
  const buf = Buffer.from(wrapped);
  if (buf.length !== 1 + IV_BYTES + TAG_BYTES + KEY_BYTES || buf[0] !== FORMAT_V1) {
    throw new DependencyError('key-ring', 'wrapped data key has an unknown format');
  }
  const iv = buf.subarray(1, 1 + IV_BYTES);
  const tag = buf.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
  const ciphertext = buf.subarray(1 + IV_BYTES + TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', master, iv);
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(tag);
    return new Uint8Array(Buffer.concat([decipher.update(ciphertext), decipher.final()]));
  } catch (cause) {
    // GCM authentication failure: wrong context, wrong master key or tampered bytes.
    throw new DependencyError('key-ring', 'data key cannot be unwrapped in this context', { cause });
  }
}

/**
 * Reads the master key file, creating it on first use: the key is written to a private temp file
 * and hard-linked into place, so a concurrent reader never sees a partial key and two first runs
 * cannot both win. A key file that group or others can read is refused: it protects every tenant.
 */
async function loadOrCreateMasterKey(path: string): Promise<Buffer> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, randomBytes(KEY_BYTES), { mode: 0o600, flag: 'wx' });
    await link(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await rm(temp, { force: true });
  }
  if (process.platform !== 'win32') {
    const { mode } = await stat(path);
    if ((mode & 0o077) !== 0) {
      throw new DependencyError(
        'key-ring',
        `master key file ${path} is accessible by group or others (mode ${(mode & 0o777).toString(8)}); run chmod 600 on it`,
      );
    }
  }
  const key = await readFile(path);
  if (key.length !== KEY_BYTES) {
    throw new DependencyError('key-ring', `master key file ${path} must hold exactly ${KEY_BYTES} bytes`);
  }
  return key;
}
