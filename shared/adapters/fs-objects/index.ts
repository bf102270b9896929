export { createFsObjectStore, type FsObjectStoreOptions } from './fs-object-store.ts';
