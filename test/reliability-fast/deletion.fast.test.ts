import { deletionSuite } from '../reliability/lib/deletion-suite.ts';

// both targets: the in-process cache and a throwaway Redis are each scanned for the deleted subject's entries
deletionSuite('fast', ['embedded', 'postgres']);
