export { createLocalKeyRing, type LocalKeyRingOptions } from './local-key-ring.ts';
