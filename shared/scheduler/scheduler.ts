import { hostname } from 'node:os';
import { Logger } from '@aws-lambda-powertools/logger';
import type { Db } from '../ports/db.ts';
import { releaseLease, renewLease, tryAcquireLease } from './lease.ts';

export interface JobContext {
  readonly job: string;
  readonly db: Db;
  readonly logger: Logger;
  /** the lease's token; pass it to writes that must be rejected once another run took over */
  readonly fencingToken: number;
  /** aborted when the lease is lost or the scheduler stops; long jobs check it between steps */
  readonly signal: AbortSignal;
}

export interface JobDefinition {
  name: string;
  /** cadence of the local timers; on AWS the EventBridge schedule carries it */
  everyMs: number;
  run(ctx: JobContext): Promise<void>;
  /** lease lifetime, renewed every third of it while the run lasts; a crashed run blocks at most this long */
  leaseTtlMs?: number;
  /** locally, run once right after `start()` instead of one period later */
  runOnStart?: boolean;
}

export type JobRunResult =
  | { job: string; status: 'ran'; fencingToken: number }
  | { job: string; status: 'skipped' }
  | { job: string; status: 'failed'; fencingToken: number; error: string };

export interface SchedulerOptions {
  db: Db;
  jobs: JobDefinition[];
  /** who holds leases, for operators reading `job_leases`; defaults to host and pid */
  holder?: string;
  logger?: Logger;
}

export interface Scheduler {
  readonly jobNames: readonly string[];
  /** Acquire the job's lease → run → release; a held lease means another run is on, so this one is skipped. */
  runJob(name: string): Promise<JobRunResult>;
  /** Local mode: one timer per job; the next run is timed after the previous one ends, so runs never pile up. */
  start(): void;
  /** Clears the timers, aborts running jobs' signals and waits up to `timeoutMs` for them to end. */
  stop(timeoutMs?: number): Promise<void>;
}

const defaults = { leaseTtlMs: 60_000, stopTimeoutMs: 30_000 } as const;

/** The job registry shared by the schedule Lambda and the local server's timers. */
export function createScheduler(options: SchedulerOptions): Scheduler {
  const { db } = options;
  const holder = options.holder ?? `${hostname()}:${process.pid}`;
  const logger = options.logger ?? new Logger({ serviceName: 'memorysync-scheduler' });
  const jobs = new Map(options.jobs.map((job) => [job.name, job]));
  if (jobs.size !== options.jobs.length) throw new Error('Job names must be unique');

  const running = new Set<Promise<unknown>>();
  const controllers = new Set<AbortController>();
  const timers = new Map<string, NodeJS.Timeout>();
  let started = false;

  async function runJob(name: string): Promise<JobRunResult> {
    const job = jobs.get(name);
    if (!job) throw new Error(`Unknown job: ${name}`);
    const ttl = job.leaseTtlMs ?? defaults.leaseTtlMs;
    const lease = await tryAcquireLease(db.kysely, name, holder, ttl);
    if (!lease) {
      logger.info('job skipped: lease held elsewhere', { job: name });
      return { job: name, status: 'skipped' };
    }
    const { fencingToken } = lease;
    const controller = new AbortController();
    controllers.add(controller);
    const heartbeat = setInterval(() => {
      renewLease(db.kysely, name, fencingToken, ttl)
        .then((held) => { if (!held) controller.abort(new Error(`Lease of ${name} lost`)); })
        .catch(() => { /* the next beat retries; expiry is the backstop */ });
    }, Math.max(1, Math.floor(ttl / 3)));
    heartbeat.unref();
    try {
      await job.run({ job: name, db, logger: logger.createChild({ persistentKeys: { job: name, fencingToken } }), fencingToken, signal: controller.signal });
      logger.info('job ran', { job: name, fencingToken });
      return { job: name, status: 'ran', fencingToken };
    } catch (error) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      logger.error('job failed', { job: name, fencingToken, error: message });
      return { job: name, status: 'failed', fencingToken, error: message };
    } finally {
      clearInterval(heartbeat);
      controllers.delete(controller);
      await releaseLease(db.kysely, name, fencingToken).catch(() => {
        logger.warn('job lease not released; it expires on its own', { job: name });
      });
    }
  }

  function schedule(job: JobDefinition, delayMs: number): void {
    const timer = setTimeout(async () => {
      const startedAt = Date.now();
      const run = runJob(job.name).catch((error) => {
        logger.error('job could not start', { job: job.name, error: error instanceof Error ? error.message : String(error) });
      });
      running.add(run);
      await run;
      running.delete(run);
      if (started) schedule(job, Math.max(0, job.everyMs - (Date.now() - startedAt)));
    }, delayMs);
    timer.unref();
    timers.set(job.name, timer);
  }

  return {
    jobNames: [...jobs.keys()],
    runJob,

    start() {
      if (started) return;
      started = true;
      for (const job of jobs.values()) schedule(job, job.runOnStart ? 0 : job.everyMs);
    },

    async stop(timeoutMs = defaults.stopTimeoutMs) {
      started = false;
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
      for (const controller of controllers) controller.abort(new Error('Scheduler stopping'));
      if (running.size === 0) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...running]),
        new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs); }),
      ]);
      clearTimeout(timer);
    },
  };
}
