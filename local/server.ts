import { loadConfig } from '#shared/config.ts';
import { startLocalServer } from './runtime.ts';

/** `npm start`: MemorySync on embedded parts (PGlite + pgvector, in-process queue and scheduler, offline embedder). */
const config = loadConfig();
const server = await startLocalServer(config);
process.stdout.write(`MemorySync listening on ${server.url} (data in ${config.MEMORYSYNC_DATA_DIR})\n`);

let signalled = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (signalled) process.exit(1);
    signalled = true;
    process.stdout.write(`\n${signal}: draining (up to 30 s), stopping the scheduler, closing the database…\n`);
    server.stop().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  });
}
