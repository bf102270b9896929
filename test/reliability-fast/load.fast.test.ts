import { loadSuite } from '../reliability/lib/load-suite.ts';

loadSuite('fast', ['embedded']);
