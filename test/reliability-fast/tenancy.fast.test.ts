import { tenancySuite } from '../reliability/lib/tenancy-suite.ts';

// The matrix is the same size in both runs: it is bounded by the route table, not by a count.
tenancySuite('fast');
