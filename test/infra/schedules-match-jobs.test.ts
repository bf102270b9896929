import { describe, expect, it } from 'vitest';
import { SCHEDULED_JOBS } from '../../infra/profile.ts';
import { scheduledJobs } from '#shared/jobs.ts';
import type { App } from '#shared/app.ts';

describe('EventBridge schedules', () => {
  it('target exactly the jobs the schedule handler knows', () => {
    // The job list only reads names; no job runs here.
    const known = scheduledJobs({} as App).map((j) => j.name).sort();
    expect(SCHEDULED_JOBS.map((j) => j.job).sort()).toEqual(known);
  });
});
