import { loadSuite } from './lib/load-suite.ts';

loadSuite('full');
