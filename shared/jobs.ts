import type { App } from './app.ts';
import type { JobDefinition } from './scheduler/index.ts';
import { sweepWebhookRetries } from './tasks/webhook-delivery.ts';
import { scheduleSiemBatches } from './tasks/siem-forwarding.ts';
import { scheduleIntelligence, scheduleRetention } from './tasks/scheduled-work.ts';
import { runBackup } from './tasks/backup-job.ts';

/** The recurring jobs; EventBridge schedules invoke them on AWS, in-process timers locally. */
export function scheduledJobs(app: App): JobDefinition[] {
  return [
    {
      name: 'retention',
      everyMs: 3_600_000,
      // One retention sweep task per tenant: TTL expiry, project policies, purge after the grace.
      run: async () => {
        await scheduleRetention(app);
      },
    },
    {
      name: 'intelligence',
      everyMs: 86_400_000,
      // One re-evaluation per tenant and a summarize task per end user with new memories.
      run: async () => {
        await scheduleIntelligence(app);
      },
    },
    {
      name: 'backup',
      everyMs: 86_400_000,
      leaseTtlMs: 30 * 60_000,
      // Encrypted export of every table to the object store (restore: `memorysync restore`).
      run: async () => {
        await runBackup(app);
      },
    },
    {
      name: 'outbox-sweep',
      everyMs: 10_000,
      // Re-sends what a failed or crashed relay left behind; the workers' ledger makes duplicates harmless.
      run: async () => {
        await app.relay.sweep({ olderThanMs: 5_000 });
      },
    },
    {
      name: 'outbox-prune',
      everyMs: 86_400_000,
      // Relayed rows and ledger entries older than the longest time SQS keeps a message (14 days) are dead weight.
      run: async () => {
        await app.relay.prune({ olderThanMs: 15 * 86_400_000 });
      },
    },
    {
      name: 'webhook-retry-sweep',
      everyMs: 15_000,
      // Retries wait as next_attempt_at on their delivery rows (SQS cannot delay more than 15 min).
      run: async () => {
        await sweepWebhookRetries(app);
      },
    },
    {
      name: 'integration-poll',
      // Every minute, so rate-limit resumes are prompt; a healthy connection is due every 15 minutes (next_sync_at).
      everyMs: 60_000,
      run: async () => {
        await app.integrations.enqueueDue();
      },
    },
    {
      name: 'siem-forward',
      everyMs: 60_000,
      run: async () => {
        await scheduleSiemBatches(app);
      },
    },
  ];
}
