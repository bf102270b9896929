/**
 * `npm run verify-receipt -- <receipt.json> [--key <file: PEM, JWK or the /.well-known document> | --url <base URL>]`
 * Verifies a deletion receipt (the answer of DELETE /memory/user/purge or DELETE /admin/tenants/{id}, or
 * its `receipt` field) against the server's published Ed25519 key. Exit code 0 = valid, 1 = not.
 */
import { readFileSync } from 'node:fs';
import { verifyDeletionReceipt, type DeletionReceipt } from '../shared/services/deletion-receipts.ts';

const args = process.argv.slice(2);
const file = args.find((a, i) => !a.startsWith('--') && !['--key', '--url'].includes(args[i - 1] ?? ''));
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
if (!file) {
  process.stderr.write('usage: npm run verify-receipt -- <receipt.json> [--key <key file> | --url <base URL>]\n');
  process.exit(2);
}
const parsed = JSON.parse(readFileSync(file, 'utf8')) as DeletionReceipt | { receipt: DeletionReceipt };
const receipt = 'receipt' in parsed ? parsed.receipt : parsed;
let key: string | Record<string, unknown>;
const keyFile = opt('--key');
if (keyFile) {
  const text = readFileSync(keyFile, 'utf8');
  key = text.trim().startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : text;
} else {
  const base = opt('--url') ?? process.env.MEMORYSYNC_URL ?? 'http://127.0.0.1:8080';
  key = (await (await fetch(new URL('/.well-known/memorysync-receipt-key', base))).json()) as Record<string, unknown>;
}
const result = verifyDeletionReceipt(receipt, key);
if (result.valid) {
  process.stdout.write(`valid: ${receipt.subject.type} ${receipt.subject.end_user_id ?? receipt.subject.tenant_id} deleted at ${receipt.at} (${Object.entries(receipt.deleted).map(([k, v]) => `${k} ${v}`).join(', ')}), key ${receipt.key_id}\n`);
  process.exit(0);
}
process.stdout.write(`INVALID: ${result.reason}\n`);
process.exit(1);
