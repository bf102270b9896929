import { createHash } from 'node:crypto';
import { open, seal } from '../crypto/aead.ts';

/**
 * The encrypted backup container:
 *
 *   `MSBK1 ` + header JSON + `\n`, then frames of [uint32 big-endian length][AES-256-GCM sealed bytes].
 *
 * The payload (gzip of JSON lines) is cut into frames of FRAME_BYTES; each frame's AAD binds the
 * header hash, its index and whether it is the last one, so frames cannot be reordered, dropped,
 * truncated or moved to another backup without the restore noticing.
 */
export const MAGIC = 'MSBK1 ';
export const FRAME_BYTES = 1024 * 1024;
/** the key ring context the backup data key is bound to */
export const BACKUP_KEY_CONTEXT = 'memorysync-backup';

export interface BackupHeader {
  format: 'memorysync-backup';
  version: 1;
  created_at: string;
  key: { context: string; key_ring: string; wrapped: string };
  migrations: string[];
}

const frameAad = (headerHash: string, index: number, last: boolean) => `memorysync-backup:v1:${headerHash}:${index}:${last ? 'end' : 'more'}`;

export function encodeContainer(header: BackupHeader, dataKey: Uint8Array, payload: Uint8Array): Buffer {
  const headerLine = Buffer.from(`${MAGIC}${JSON.stringify(header)}\n`, 'utf8');
  const headerHash = createHash('sha256').update(headerLine).digest('hex');
  const parts: Buffer[] = [headerLine];
  const frames = Math.max(1, Math.ceil(payload.length / FRAME_BYTES));
  for (let i = 0; i < frames; i++) {
    const sealed = seal(dataKey, payload.subarray(i * FRAME_BYTES, (i + 1) * FRAME_BYTES), frameAad(headerHash, i, i === frames - 1));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(sealed.length);
    parts.push(length, Buffer.from(sealed));
  }
  return Buffer.concat(parts);
}

export function readHeader(container: Uint8Array): { header: BackupHeader; body: Buffer; headerHash: string } {
  const buf = Buffer.from(container);
  const newline = buf.indexOf(0x0a);
  if (newline < 0 || buf.subarray(0, MAGIC.length).toString('utf8') !== MAGIC) throw new Error('not a MemorySync backup (bad magic)');
  const headerLine = buf.subarray(0, newline + 1);
  const header = JSON.parse(headerLine.subarray(MAGIC.length).toString('utf8')) as BackupHeader;
  if (header.format !== 'memorysync-backup' || header.version !== 1) throw new Error(`unsupported backup format ${header.format} v${header.version}`);
  return { header, body: buf.subarray(newline + 1), headerHash: createHash('sha256').update(headerLine).digest('hex') };
}

export function decodeFrames(body: Buffer, headerHash: string, dataKey: Uint8Array): Buffer {
  if (body.length === 0) throw new Error('backup is truncated (no data)');
  const out: Buffer[] = [];
  let offset = 0;
  for (let i = 0; offset < body.length; i++) {
    if (offset + 4 > body.length) throw new Error('backup is truncated');
    const length = body.readUInt32BE(offset);
    const end = offset + 4 + length;
    if (end > body.length) throw new Error('backup is truncated');
    const last = end === body.length;
    try {
      out.push(open(dataKey, body.subarray(offset + 4, end), frameAad(headerHash, i, last)));
    } catch {
      throw new Error(`backup frame ${i} failed authentication (corrupted, truncated or wrong key)`);
    }
    offset = end;
  }
  return Buffer.concat(out);
}
