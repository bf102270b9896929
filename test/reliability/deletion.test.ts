import { deletionSuite } from './lib/deletion-suite.ts';

deletionSuite('full', ['embedded', 'postgres']);
