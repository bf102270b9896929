import type { App } from './app.ts';
import type { JobDefinition } from './scheduler/index.ts';

/** The recurring jobs; EventBridge schedules invoke them on AWS, in-process timers locally. */
export function scheduledJobs(app: App): JobDefinition[] {
  return [
    {
      name: 'outbox-sweep',
      everyMs: 10_000,
      // Re-sends what a failed or crashed relay left behind; the workers' ledger makes duplicates harmless.
      run: async () => {
        await app.relay.sweep({ olderThanMs: 5_000 });
      },
    },
  ];
}
