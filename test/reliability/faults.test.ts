import { faultsSuite } from './lib/faults-suite.ts';

faultsSuite('full');
