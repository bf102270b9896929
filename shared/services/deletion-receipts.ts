import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What a deletion removed: the subject, rows/vectors/cache entries per store, when, and who signed it. */
export interface DeletionReceipt {
  subject: { type: 'end_user' | 'tenant'; tenant_id: string; end_user_id?: string };
  deleted: Record<string, number>;
  at: string;
  key_id: string;
  /** Ed25519 over the canonical JSON of every other field (base64url) */
  signature: string;
}

export interface ReceiptPublicKey {
  algorithm: 'Ed25519';
  key_id: string;
  public_key_pem: string;
  jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string; kid: string; use: 'sig'; alg: 'EdDSA' };
}

/** JSON with object keys sorted at every level: the bytes that are signed and verified. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value as Record<string, unknown>).sort().filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const signedBytes = (r: Omit<DeletionReceipt, 'signature'>) => Buffer.from(canonicalJson({ subject: r.subject, deleted: r.deleted, at: r.at, key_id: r.key_id }));

export const keyIdOf = (publicKey: KeyObject): string =>
  createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);

/**
 * Signs deletion receipts with an Ed25519 key: from `RECEIPT_SIGNING_KEY` (PKCS#8 PEM) on AWS, or
 * generated once into the local data dir (`receipt-signing-key.pem`, mode 0600). The public half is
 * published at GET /.well-known/memorysync-receipt-key; `npm run verify-receipt` checks a receipt.
 */
export class DeletionReceipts {
  readonly publicKey: KeyObject;
  readonly keyId: string;

  constructor(private readonly privateKey: KeyObject, private readonly clock: { now(): Date } = { now: () => new Date() }) {
    this.publicKey = createPublicKey(privateKey);
    this.keyId = keyIdOf(this.publicKey);
  }

  sign(subject: DeletionReceipt['subject'], deleted: Record<string, number>): DeletionReceipt {
    const unsigned = { subject, deleted, at: this.clock.now().toISOString(), key_id: this.keyId };
    return { ...unsigned, signature: sign(null, signedBytes(unsigned), this.privateKey).toString('base64url') };
  }

  published(): ReceiptPublicKey {
    const jwk = this.publicKey.export({ format: 'jwk' }) as { x: string };
    return {
      algorithm: 'Ed25519', key_id: this.keyId, public_key_pem: this.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      jwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid: this.keyId, use: 'sig', alg: 'EdDSA' },
    };
  }
}

export function loadDeletionReceipts(options: { dataDir: string; signingKeyPem?: string; clock?: { now(): Date } }): DeletionReceipts {
  if (options.signingKeyPem) return new DeletionReceipts(createPrivateKey(options.signingKeyPem.replace(/\\n/g, '\n')), options.clock);
  if (options.dataDir === ':memory:') return new DeletionReceipts(generateKeyPairSync('ed25519').privateKey, options.clock);
  const path = join(options.dataDir, 'receipt-signing-key.pem');
  if (!existsSync(path)) writeFileSync(path, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  chmodSync(path, 0o600);
  return new DeletionReceipts(createPrivateKey(readFileSync(path, 'utf8')), options.clock);
}

/** Checks a receipt against a published key (PEM, JWK or the /.well-known document). */
export function verifyDeletionReceipt(receipt: DeletionReceipt, key: string | ReceiptPublicKey | Record<string, unknown>): { valid: boolean; reason?: string } {
  let publicKey: KeyObject;
  if (typeof key === 'string') publicKey = createPublicKey(key);
  else if ('public_key_pem' in key && typeof key.public_key_pem === 'string') publicKey = createPublicKey(key.public_key_pem);
  else publicKey = createPublicKey({ key: key as never, format: 'jwk' });
  if (keyIdOf(publicKey) !== receipt.key_id) return { valid: false, reason: `receipt was signed by key ${receipt.key_id}, not ${keyIdOf(publicKey)}` };
  const { signature, ...rest } = receipt;
  const ok = verify(null, signedBytes(rest), publicKey, Buffer.from(signature ?? '', 'base64url'));
  return ok ? { valid: true } : { valid: false, reason: 'signature does not match the receipt' };
}

/** Per-store counts of the two deletion routes' answers, flattened into the receipt's `deleted` map. */
export function deletedCounts(body: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (prefix: string, v: unknown) => {
    if (typeof v === 'number') out[prefix] = v;
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (typeof x === 'number') out[`${prefix ? `${prefix}.` : ''}${k}`] = x;
  };
  if (body.deleted && typeof body.deleted === 'object') add('', body.deleted);
  if (body.rows) add('rows', body.rows);
  for (const k of ['vectors_deleted', 'vector_namespaces', 'cache_entries']) if (typeof body[k] === 'number') out[k] = body[k] as number;
  if (body.data_key_destroyed === true) out.data_keys = 1;
  return out;
}
