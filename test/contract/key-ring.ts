import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { KeyRing } from '#shared/ports/key-ring.ts';

/**
 * The KeyRing contract: fresh 256-bit data keys per call, wrapped keys that unwrap to the same
 * plaintext only under the tenant context they were generated for.
 */
export function keyRingContract(name: string, factory: () => Promise<KeyRing> | KeyRing) {
  describe(`KeyRing contract: ${name}`, () => {
    it('generates a 256-bit data key whose wrapped form differs from the plaintext', async () => {
      const ring = await factory();
      const key = await ring.generateDataKey('tenant-a');
      expect(key.plaintext.byteLength).toBe(32);
      expect(key.wrapped.byteLength).toBeGreaterThan(0);
      expect(Buffer.from(key.wrapped).includes(Buffer.from(key.plaintext))).toBe(false);
    });

    it('generates a different data key on every call', async () => {
      const ring = await factory();
      const a = await ring.generateDataKey('tenant-a');
      const b = await ring.generateDataKey('tenant-a');
      expect(Buffer.from(a.plaintext).equals(Buffer.from(b.plaintext))).toBe(false);
      expect(Buffer.from(a.wrapped).equals(Buffer.from(b.wrapped))).toBe(false);
    });

    it('unwraps a data key to the same plaintext under the same context', async () => {
      const ring = await factory();
      const key = await ring.generateDataKey('tenant-a');
      const plaintext = await ring.unwrap(key.wrapped, 'tenant-a');
      expect(Buffer.from(plaintext).equals(Buffer.from(key.plaintext))).toBe(true);
    });

    it("refuses to unwrap a data key under another tenant's context", async () => {
      const ring = await factory();
      const key = await ring.generateDataKey('tenant-a');
      await expect(ring.unwrap(key.wrapped, 'tenant-b')).rejects.toThrow();
    });

    it('refuses to unwrap a tampered data key', async () => {
      const ring = await factory();
      const key = await ring.generateDataKey('tenant-a');
      const tampered = Uint8Array.from(key.wrapped);
      tampered[tampered.length - 1] ^= 0xff;
      await expect(ring.unwrap(tampered, 'tenant-a')).rejects.toThrow();
    });

    it('yields a data key that encrypts and decrypts with AES-256-GCM after unwrapping', async () => {
      const ring = await factory();
      const { plaintext, wrapped } = await ring.generateDataKey('tenant-a');
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', plaintext, iv);
      const sealed = Buffer.concat([cipher.update('remember the blue door', 'utf8'), cipher.final()]);
      const tag = cipher.getAuthTag();

      const key = await ring.unwrap(wrapped, 'tenant-a');
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAuthTag(tag);
      expect(Buffer.concat([decipher.update(sealed), decipher.final()]).toString('utf8')).toBe('remember the blue door');
    });
  });
}
