import { fuzzSuite } from '../reliability/lib/fuzz-suite.ts';

fuzzSuite('fast');
