import { hmacHex } from './hashing.ts';

/**
 * The signature of an outbound payload: `sha256=` + hex HMAC-SHA256 over `"{timestamp}.{body}"` with
 * the shared secret. Binding the timestamp lets a receiver refuse replays of an old, valid body.
 */
export const signPayload = (secret: string, timestamp: number, body: string): string => `sha256=${hmacHex(secret, `${timestamp}.${body}`)}`;
