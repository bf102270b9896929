import { hkdfSync } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { KeyRing } from '../ports/key-ring.ts';

export interface TenantKeys {
  /** AES-256 key for memory text */
  dataKey: Uint8Array;
  /** HMAC key for blind lexical tokens, derived from the data key */
  lexicalKey: Uint8Array;
}

/**
 * Per-tenant envelope keys. The wrapped data key lives on the tenant row; plaintext keys are cached
 * in process for a few minutes. Destroying the wrapped key (tenant deletion) crypto-shreds the data.
 */
export class TenantKeyService {
  private readonly cache = new Map<string, { keys: TenantKeys; until: number }>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly keyRing: KeyRing,
    private readonly ttlMs = 5 * 60_000,
  ) {}

  /** Creates the tenant's data key if it has none; returns the wrapped bytes to store. */
  async provision(tenantId: string): Promise<Uint8Array> {
    const key = await this.keyRing.generateDataKey(tenantId);
    this.remember(tenantId, key.plaintext);
    return key.wrapped;
  }

  async forTenant(tenantId: string): Promise<TenantKeys> {
    const hit = this.cache.get(tenantId);
    if (hit && hit.until > Date.now()) return hit.keys;
    const row = await this.db.selectFrom('tenants').select(['data_key_wrapped']).where('id', '=', tenantId).executeTakeFirst();
    let plaintext: Uint8Array;
    if (row?.data_key_wrapped) {
      plaintext = await this.keyRing.unwrap(row.data_key_wrapped, tenantId);
    } else if (row) {
      const key = await this.keyRing.generateDataKey(tenantId);
      // Only the first writer wins, so two racing requests cannot leave rows under two keys.
      const updated = await this.db
        .updateTable('tenants')
        .set({ data_key_wrapped: key.wrapped })
        .where('id', '=', tenantId)
        .where('data_key_wrapped', 'is', null)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 1) plaintext = key.plaintext;
      else return this.forTenant(tenantId);
    } else {
      throw new Error(`unknown tenant ${tenantId}`);
    }
    return this.remember(tenantId, plaintext);
  }

  forget(tenantId: string): void {
    this.cache.delete(tenantId);
  }

  private remember(tenantId: string, plaintext: Uint8Array): TenantKeys {
    const keys: TenantKeys = {
      dataKey: plaintext,
      lexicalKey: new Uint8Array(hkdfSync('sha256', plaintext, Buffer.alloc(0), 'memorysync/lexical/v1', 32)),
    };
    this.cache.set(tenantId, { keys, until: Date.now() + this.ttlMs });
    return keys;
  }
}
