import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { DependencyError } from '../../errors.ts';
import { systemClock, type Clock } from '../../ports/clock.ts';
import type { DataKey, KeyRing } from '../../ports/key-ring.ts';

export interface KmsKeyRingOptions {
  client: KMSClient;
  /** key id, ARN or alias of the KMS key that wraps data keys */
  keyId: string;
  /** how long an unwrapped data key stays in memory; default 5 minutes, 0 disables the cache */
  cacheTtlMs?: number;
  /** most unwrapped keys kept at once; the least recently used is dropped first; default 1000 */
  maxCachedKeys?: number;
  clock?: Clock;
}

/** The encryption context key that binds a data key to its tenant (visible in CloudTrail). */
export const TENANT_CONTEXT_KEY = 'tenant_id';

/**
 * Envelope encryption with AWS KMS. Every data key is generated with the encryption context
 * {tenant_id}, so KMS refuses to decrypt it for another tenant and CloudTrail records whose key
 * was used. Unwrapped keys are cached briefly (bounded, LRU) because every read of encrypted data
 * would otherwise cost a KMS Decrypt call.
 */
export function createKmsKeyRing(options: KmsKeyRingOptions): KeyRing {
  const { client, keyId } = options;
  const ttlMs = options.cacheTtlMs ?? 300_000;
  const maxEntries = options.maxCachedKeys ?? 1000;
  const clock = options.clock ?? systemClock;
  /** insertion order doubles as recency order: a hit is re-inserted at the end */
  const cache = new Map<string, { plaintext: Uint8Array; expiresAt: number }>();

  const cacheKey = (wrapped: Uint8Array, context: string) => `${context}\u0000${Buffer.from(wrapped).toString('base64')}`;

  function remember(key: string, plaintext: Uint8Array) {
    if (ttlMs <= 0) return;
    cache.delete(key);
    cache.set(key, { plaintext: Uint8Array.from(plaintext), expiresAt: clock.now().getTime() + ttlMs });
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value!);
  }

  function recall(key: string): Uint8Array | undefined {
    const entry = cache.get(key);
    if (!entry) return undefined;
    cache.delete(key);
    if (entry.expiresAt <= clock.now().getTime()) {
      entry.plaintext.fill(0);
      return undefined;
    }
    cache.set(key, entry);
    // a copy, so a caller that zeroes its key after use does not poison the cache
    return Uint8Array.from(entry.plaintext);
  }

  return {
    kind: 'kms',
    async generateDataKey(context: string): Promise<DataKey> {
      let result;
      try {
        result = await client.send(
          new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: { [TENANT_CONTEXT_KEY]: context } }),
        );
      } catch (cause) {
        throw new DependencyError('key-ring', `KMS GenerateDataKey failed: ${errorName(cause)}`, { cause });
      }
      if (!result.Plaintext || !result.CiphertextBlob) {
        throw new DependencyError('key-ring', 'KMS GenerateDataKey returned no key material');
      }
      const key = { plaintext: Uint8Array.from(result.Plaintext), wrapped: Uint8Array.from(result.CiphertextBlob) };
      remember(cacheKey(key.wrapped, context), key.plaintext);
      return key;
    },
    async unwrap(wrapped: Uint8Array, context: string): Promise<Uint8Array> {
      const key = cacheKey(wrapped, context);
      const cached = recall(key);
      if (cached) return cached;
      let result;
      try {
        result = await client.send(
          new DecryptCommand({ KeyId: keyId, CiphertextBlob: wrapped, EncryptionContext: { [TENANT_CONTEXT_KEY]: context } }),
        );
      } catch (cause) {
        const message =
          errorName(cause) === 'InvalidCiphertextException'
            ? 'data key cannot be unwrapped in this context'
            : `KMS Decrypt failed: ${errorName(cause)}`;
        throw new DependencyError('key-ring', message, { cause });
      }
      if (!result.Plaintext) throw new DependencyError('key-ring', 'KMS Decrypt returned no key material');
      const plaintext = Uint8Array.from(result.Plaintext);
      remember(key, plaintext);
      return plaintext;
    },
  };
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'Error';
}
