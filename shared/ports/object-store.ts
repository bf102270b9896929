/** Blob storage for backups and dead letters. Keys are `/`-separated paths. */
export interface ObjectStore {
  readonly kind: string;
  put(key: string, body: Uint8Array | string, contentType?: string): Promise<void>;
  /** `undefined` when the key does not exist */
  get(key: string): Promise<Uint8Array | undefined>;
  list(prefix: string): Promise<string[]>;
  delete(keys: string[]): Promise<void>;
}
