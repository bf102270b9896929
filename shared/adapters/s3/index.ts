export { createS3ObjectStore, type S3ObjectStoreOptions } from './s3-object-store.ts';
