import { securitySuite } from './lib/security-suite.ts';

securitySuite('full', ['embedded', 'postgres']);
