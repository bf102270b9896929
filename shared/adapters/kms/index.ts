export { createKmsKeyRing, TENANT_CONTEXT_KEY, type KmsKeyRingOptions } from './kms-key-ring.ts';
