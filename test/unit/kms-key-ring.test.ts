import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import {
  DependencyTimeoutException,
  InvalidCiphertextException,
  KMSClient,
  type DecryptCommandInput,
  type GenerateDataKeyCommandInput,
} from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { createKmsKeyRing } from '#shared/adapters/kms/kms-key-ring.ts';
import { DependencyError } from '#shared/errors.ts';
import type { Clock } from '#shared/ports/clock.ts';
import { keyRingContract } from '../contract/key-ring.ts';

interface Call {
  command: string;
  input: Record<string, unknown>;
}

/**
 * A KMSClient whose requests stop at the SDK's initialize step and are answered the way KMS
 * answers them: data keys wrapped with AES-GCM under a per-client master key, with the encryption
 * context as AAD, so Decrypt with another context fails with InvalidCiphertextException.
 */
function emulatedKms(options: { fail?: (command: string) => Error | undefined } = {}) {
  const master = randomBytes(32);
  const calls: Call[] = [];
  const client = new KMSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const aad = (context: unknown) => Buffer.from(JSON.stringify(context ?? {}));
  client.middlewareStack.add(
    (_next, context) => async (args) => {
      const command = context.commandName!;
      calls.push({ command, input: args.input as Record<string, unknown> });
      const failure = options.fail?.(command);
      if (failure) throw failure;
      if (command === 'GenerateDataKeyCommand') {
        const input = args.input as GenerateDataKeyCommandInput;
        const plaintext = randomBytes(input.KeySpec === 'AES_256' ? 32 : 16);
        const iv = randomBytes(12);
        const cipher = createCipheriv('aes-256-gcm', master, iv).setAAD(aad(input.EncryptionContext));
        const sealed = Buffer.concat([cipher.update(plaintext), cipher.final()]);
        const blob = Buffer.concat([iv, cipher.getAuthTag(), sealed]);
        return { output: { $metadata: {}, KeyId: input.KeyId, Plaintext: new Uint8Array(plaintext), CiphertextBlob: new Uint8Array(blob) }, response: {} };
      }
      if (command === 'DecryptCommand') {
        const input = args.input as DecryptCommandInput;
        const blob = Buffer.from(input.CiphertextBlob!);
        try {
          const decipher = createDecipheriv('aes-256-gcm', master, blob.subarray(0, 12)).setAAD(aad(input.EncryptionContext));
          decipher.setAuthTag(blob.subarray(12, 28));
          const plaintext = Buffer.concat([decipher.update(blob.subarray(28)), decipher.final()]);
          return { output: { $metadata: {}, KeyId: input.KeyId, Plaintext: new Uint8Array(plaintext) }, response: {} };
        } catch {
          throw new InvalidCiphertextException({ message: 'InvalidCiphertextException', $metadata: { httpStatusCode: 400 } });
        }
      }
      throw new Error(`unexpected command ${command}`);
    },
    { step: 'initialize', name: 'emulatedKms' },
  );
  return { client, calls };
}

class ManualClock implements Clock {
  constructor(private ms = Date.parse('2025-01-01T00:00:00Z')) {}
  now() {
    return new Date(this.ms);
  }
  advance(ms: number) {
    this.ms += ms;
  }
}

const KEY_ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

keyRingContract('kms (SDK middleware emulation)', () => createKmsKeyRing({ client: emulatedKms().client, keyId: KEY_ARN, cacheTtlMs: 0 }));
keyRingContract('kms with cache', () => createKmsKeyRing({ client: emulatedKms().client, keyId: KEY_ARN }));

describe('kms key ring', () => {
  it('asks KMS for an AES_256 data key bound to the tenant by encryption context', async () => {
    const { client, calls } = emulatedKms();
    await createKmsKeyRing({ client, keyId: KEY_ARN }).generateDataKey('tenant-42');
    expect(calls).toEqual([
      { command: 'GenerateDataKeyCommand', input: { KeyId: KEY_ARN, KeySpec: 'AES_256', EncryptionContext: { tenant_id: 'tenant-42' } } },
    ]);
  });

  it('decrypts with the same key id and encryption context', async () => {
    const { client, calls } = emulatedKms();
    const { wrapped } = await createKmsKeyRing({ client, keyId: KEY_ARN }).generateDataKey('tenant-42');
    await createKmsKeyRing({ client, keyId: KEY_ARN }).unwrap(wrapped, 'tenant-42');
    expect(calls[1]!.command).toBe('DecryptCommand');
    expect(calls[1]!.input).toMatchObject({ KeyId: KEY_ARN, EncryptionContext: { tenant_id: 'tenant-42' } });
    expect(Buffer.from(calls[1]!.input.CiphertextBlob as Uint8Array).equals(Buffer.from(wrapped))).toBe(true);
  });

  it('serves repeated unwraps of the same key from the cache', async () => {
    const { client, calls } = emulatedKms();
    const writer = createKmsKeyRing({ client, keyId: KEY_ARN });
    const { wrapped, plaintext } = await writer.generateDataKey('tenant-1');
    const reader = createKmsKeyRing({ client, keyId: KEY_ARN });
    for (let i = 0; i < 5; i++) expect(Buffer.from(await reader.unwrap(wrapped, 'tenant-1')).equals(Buffer.from(plaintext))).toBe(true);
    expect(calls.filter((c) => c.command === 'DecryptCommand').length).toBe(1);
  });

  it('does not call Decrypt for a key it generated moments ago', async () => {
    const { client, calls } = emulatedKms();
    const ring = createKmsKeyRing({ client, keyId: KEY_ARN });
    const { wrapped } = await ring.generateDataKey('tenant-1');
    await ring.unwrap(wrapped, 'tenant-1');
    expect(calls.map((c) => c.command)).toEqual(['GenerateDataKeyCommand']);
  });

  it('asks KMS again once the cached key has expired', async () => {
    const { client, calls } = emulatedKms();
    const clock = new ManualClock();
    const ring = createKmsKeyRing({ client, keyId: KEY_ARN, cacheTtlMs: 60_000, clock });
    const { wrapped } = await ring.generateDataKey('tenant-1');
    clock.advance(59_999);
    await ring.unwrap(wrapped, 'tenant-1');
    clock.advance(2);
    await ring.unwrap(wrapped, 'tenant-1');
    expect(calls.map((c) => c.command)).toEqual(['GenerateDataKeyCommand', 'DecryptCommand']);
  });

  it('keeps at most maxCachedKeys keys, dropping the least recently used', async () => {
    const { client, calls } = emulatedKms();
    const ring = createKmsKeyRing({ client, keyId: KEY_ARN, maxCachedKeys: 2 });
    const a = await ring.generateDataKey('a');
    const b = await ring.generateDataKey('b');
    await ring.unwrap(a.wrapped, 'a'); // a is now the most recent
    await ring.generateDataKey('c'); // evicts b
    await ring.unwrap(a.wrapped, 'a');
    await ring.unwrap(b.wrapped, 'b');
    expect(calls.filter((c) => c.command === 'DecryptCommand').map((c) => (c.input.EncryptionContext as { tenant_id: string }).tenant_id))
      .toEqual(['b']);
  });

  it('never answers an unwrap for another tenant from the cache', async () => {
    const { client } = emulatedKms();
    const ring = createKmsKeyRing({ client, keyId: KEY_ARN });
    const { wrapped } = await ring.generateDataKey('tenant-a');
    await ring.unwrap(wrapped, 'tenant-a');
    const error = await ring.unwrap(wrapped, 'tenant-b').catch((e) => e);
    expect(error).toBeInstanceOf(DependencyError);
    expect(error.message).toBe('data key cannot be unwrapped in this context');
  });

  it('returns a copy, so zeroing a returned key does not corrupt the cache', async () => {
    const { client } = emulatedKms();
    const ring = createKmsKeyRing({ client, keyId: KEY_ARN });
    const { wrapped, plaintext } = await ring.generateDataKey('t');
    const expected = Buffer.from(plaintext);
    (await ring.unwrap(wrapped, 't')).fill(0);
    expect(Buffer.from(await ring.unwrap(wrapped, 't')).equals(expected)).toBe(true);
  });

  it('maps KMS failures to DependencyError without leaking key material', async () => {
    const { client } = emulatedKms({
      fail: () => new DependencyTimeoutException({ message: 'KMS timed out', $metadata: { httpStatusCode: 503 } }),
    });
    const ring = createKmsKeyRing({ client, keyId: KEY_ARN });
    const generate = await ring.generateDataKey('t').catch((e) => e);
    expect(generate).toBeInstanceOf(DependencyError);
    expect(generate).toMatchObject({ dependency: 'key-ring', message: 'KMS GenerateDataKey failed: DependencyTimeoutException' });
    const unwrap = await ring.unwrap(randomBytes(60), 't').catch((e) => e);
    expect(unwrap).toMatchObject({ dependency: 'key-ring', message: 'KMS Decrypt failed: DependencyTimeoutException' });
    expect(unwrap.cause).toBeInstanceOf(DependencyTimeoutException);
  });
});
