import { fuzzSuite } from './lib/fuzz-suite.ts';

fuzzSuite('full');
