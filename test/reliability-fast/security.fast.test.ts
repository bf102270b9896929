import { securitySuite } from '../reliability/lib/security-suite.ts';

securitySuite('fast', ['embedded']);
