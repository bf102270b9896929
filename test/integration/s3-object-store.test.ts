import { randomBytes } from 'node:crypto';
import { S3Client, GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { startFauxqs } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3ObjectStore } from '#shared/adapters/s3/s3-object-store.ts';
import { DependencyError } from '#shared/errors.ts';
import { objectStoreContract } from '../contract/object-store.ts';

let server: Awaited<ReturnType<typeof startFauxqs>>;
let client: S3Client;

beforeAll(async () => {
  server = await startFauxqs({ port: 0, logger: false });
  client = new S3Client({
    endpoint: server.address,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
});
afterAll(async () => {
  client?.destroy();
  await server?.stop();
});

const freshBucket = () => server.createBucket(`memorysync-${randomBytes(6).toString('hex')}`).bucketName;

objectStoreContract('s3 on fauxqs', () => createS3ObjectStore({ client, bucket: freshBucket() }));
objectStoreContract('s3 on fauxqs with a key prefix', () =>
  createS3ObjectStore({ client, bucket: freshBucket(), prefix: 'env/prod/' }));

describe('s3 object store', () => {
  it('writes under the configured prefix and lists keys without it', async () => {
    const bucket = freshBucket();
    const store = createS3ObjectStore({ client, bucket, prefix: 'memorysync/' });
    await store.put('backups/t1.json', '{"ok":true}', 'application/json');
    const raw = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'memorysync/backups/t1.json' }));
    expect(await raw.Body!.transformToString()).toBe('{"ok":true}');
    expect(raw.ContentType).toBe('application/json');
    expect(await store.list('backups/')).toEqual(['backups/t1.json']);
  });

  it('pages through more than one ListObjectsV2 page', async () => {
    const store = createS3ObjectStore({ client, bucket: freshBucket() });
    const keys = Array.from({ length: 1005 }, (_, i) => `many/${String(i).padStart(4, '0')}.json`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, 'x')));
    const listed = await store.list('many/');
    expect(listed.length).toBe(1005);
    expect(listed).toEqual(keys);

    await store.delete(keys);
    expect(await store.list('many/')).toEqual([]);
  });

  it('asks for SSE-KMS with the configured key on every write', async () => {
    const bucket = freshBucket();
    const sent: unknown[] = [];
    const kmsClient = new S3Client({ endpoint: server.address, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    kmsClient.middlewareStack.add((next) => async (args) => {
      sent.push(args.input);
      return next(args);
    }, { step: 'initialize', name: 'captureInput' });
    const store = createS3ObjectStore({ client: kmsClient, bucket, kmsKeyId: 'alias/memorysync' });
    await store.put('a.json', '{}');
    expect(sent[0]).toMatchObject({ Bucket: bucket, Key: 'a.json', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/memorysync' });
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'a.json' }));
    kmsClient.destroy();
  });

  it('reports a missing bucket as a DependencyError, not as a missing key', async () => {
    const store = createS3ObjectStore({ client, bucket: `missing-${randomBytes(6).toString('hex')}` });
    await expect(store.put('a.json', 'x')).rejects.toBeInstanceOf(DependencyError);
    await expect(store.list('')).rejects.toBeInstanceOf(DependencyError);
  });
});
