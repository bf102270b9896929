/** Envelope encryption: data keys are generated per tenant and stored wrapped by a master key. */
export interface DataKey {
  plaintext: Uint8Array;
  wrapped: Uint8Array;
}

export interface KeyRing {
  readonly kind: string;
  /** Generates a fresh 256-bit data key bound to `context` (the tenant id). */
  generateDataKey(context: string): Promise<DataKey>;
  /** Unwraps a data key; fails if `context` differs from the one it was generated with. */
  unwrap(wrapped: Uint8Array, context: string): Promise<Uint8Array>;
}
