#!/usr/bin/env node
// Launcher for the operator CLI: registers tsx so the TypeScript sources run as they are (same as
// `node --import tsx cli/memorysync.ts`), then hands over the arguments.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/memorysync.ts');
process.exitCode = await main(process.argv);
