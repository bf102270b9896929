import { deletionSuite } from '../reliability/lib/deletion-suite.ts';

deletionSuite('fast', ['embedded']);
