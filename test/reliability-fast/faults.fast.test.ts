import { faultsSuite } from '../reliability/lib/faults-suite.ts';

// In-process faults only (embedder down, relay crash); Redis, database and SIGKILL run in the full suite.
faultsSuite('fast');
