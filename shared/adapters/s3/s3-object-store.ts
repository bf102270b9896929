import {
  DeleteObjectsCommand,
  GetObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  paginateListObjectsV2,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DependencyError } from '../../errors.ts';
import type { ObjectStore } from '../../ports/object-store.ts';

export interface S3ObjectStoreOptions {
  client: S3Client;
  bucket: string;
  /** prepended to every key, e.g. `backups/`; list results are returned without it */
  prefix?: string;
  /** when set, objects are written with SSE-KMS under this key */
  kmsKeyId?: string;
}

/** DeleteObjects accepts at most 1000 keys per call. */
const DELETE_CHUNK = 1000;

/**
 * The object store on S3. Missing keys read as `undefined`; every other S3 failure becomes a
 * DependencyError so callers see one error type whatever the backend. The adapter does not own
 * the client.
 */
export function createS3ObjectStore(options: S3ObjectStoreOptions): ObjectStore {
  const { client, bucket, kmsKeyId } = options;
  const prefix = options.prefix ?? '';

  async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (cause) {
      if (cause instanceof DependencyError) throw cause;
      const name = cause instanceof Error ? cause.name : 'Error';
      throw new DependencyError('object-store', `S3 ${what} failed: ${name}`, { cause });
    }
  }

  return {
    kind: 's3',
    async put(key, body, contentType) {
      await call('PutObject', () =>
        client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: prefix + key,
            Body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
            ContentType: contentType ?? (typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream'),
            ...(kmsKeyId ? { ServerSideEncryption: 'aws:kms' as const, SSEKMSKeyId: kmsKeyId } : {}),
          }),
        ),
      );
    },
    async get(key) {
      try {
        const result = await client.send(new GetObjectCommand({ Bucket: bucket, Key: prefix + key }));
        return result.Body ? await result.Body.transformToByteArray() : new Uint8Array();
      } catch (error) {
        if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey') return undefined;
        const name = error instanceof Error ? error.name : 'Error';
        throw new DependencyError('object-store', `S3 GetObject failed: ${name}`, { cause: error });
      }
    },
    async list(listPrefix) {
      return call('ListObjectsV2', async () => {
        const keys: string[] = [];
        for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: prefix + listPrefix })) {
          for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key.slice(prefix.length));
        }
        return keys;
      });
    },
    async delete(keys) {
      for (let i = 0; i < keys.length; i += DELETE_CHUNK) {
        const chunk = keys.slice(i, i + DELETE_CHUNK);
        const result = await call('DeleteObjects', () =>
          client.send(
            new DeleteObjectsCommand({
              Bucket: bucket,
              Delete: { Objects: chunk.map((key) => ({ Key: prefix + key })), Quiet: true },
            }),
          ),
        );
        if (result.Errors && result.Errors.length > 0) {
          const first = result.Errors[0]!;
          throw new DependencyError(
            'object-store',
            `S3 DeleteObjects failed for ${result.Errors.length} key(s), first ${first.Key} (${first.Code})`,
          );
        }
      }
    },
  };
}
