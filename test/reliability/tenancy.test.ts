import { tenancySuite } from './lib/tenancy-suite.ts';

tenancySuite('full');
