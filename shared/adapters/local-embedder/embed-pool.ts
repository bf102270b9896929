import { Worker } from 'node:worker_threads';

export interface EmbedPoolOptions {
  /** worker threads (≥ 1) */
  size: number;
  /** vector length of the embedder the workers run */
  dimension: number;
  /** what the workers pass to `createLocalEmbedder` (plain data: it crosses the thread boundary) */
  embedderOptions: Record<string, unknown>;
  /** workers that had nothing to do for this long are stopped (and started again on demand) */
  idleMs?: number;
}

export interface EmbedPool {
  /** true once every worker has loaded the vocabulary; calling `start` first makes it come true */
  readonly ready: boolean;
  /** starts the workers (once); resolves when they are ready, rejects when one cannot start */
  start(): Promise<void>;
  /** embeds `texts`, split over the workers in contiguous slices, in the input order */
  embed(texts: string[]): Promise<number[][]>;
  close(): Promise<void>;
}

interface Job {
  id: number;
  texts: string[];
  resolve: (vectors: number[][]) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  /** jobs sent to this worker, answered in order */
  pending: Map<number, Job>;
  texts: number;
}

const WORKER_URL = new URL('./embed-worker.mjs', import.meta.url);

/**
 * A fixed pool of worker threads running the local embedder, so a big batch (reindex, batched
 * embedding tasks) uses every core and leaves the main thread free for database I/O. The embedder is
 * deterministic, so the vectors are bit-for-bit those of the main thread (Float64Array transfer).
 * Workers hold a reference on the event loop only while they have work, and stop after `idleMs`.
 */
export function createEmbedPool(options: EmbedPoolOptions): EmbedPool {
  const size = Math.max(1, Math.floor(options.size));
  const idleMs = options.idleMs ?? 30_000;
  let slots: Slot[] = [];
  let starting: Promise<void> | undefined;
  let ready = false;
  let nextId = 1;
  let idleTimer: NodeJS.Timeout | undefined;

  const stopAll = async () => {
    const old = slots;
    slots = [];
    starting = undefined;
    ready = false;
    await Promise.all(old.map((s) => s.worker.terminate()));
  };

  const armIdleTimer = () => {
    clearTimeout(idleTimer);
    if (slots.some((s) => s.pending.size > 0)) return;
    idleTimer = setTimeout(() => void stopAll(), idleMs);
    idleTimer.unref();
  };

  const failSlot = (slot: Slot, error: Error) => {
    for (const job of slot.pending.values()) job.reject(error);
    slot.pending.clear();
    slots = slots.filter((s) => s !== slot);
    if (slots.length === 0) {
      ready = false;
      starting = undefined;
    }
  };

  const spawn = (): Promise<Slot> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(WORKER_URL, { workerData: { options: options.embedderOptions } });
      const slot: Slot = { worker, pending: new Map(), texts: 0 };
      let started = false;
      worker.on('message', (message: { ready?: true; id?: number; vectors?: Float64Array; error?: string }) => {
        if (message.ready) {
          started = true;
          worker.unref();
          resolve(slot);
          return;
        }
        const job = slot.pending.get(message.id!);
        if (!job) return;
        slot.pending.delete(job.id);
        slot.texts -= job.texts.length;
        if (slot.pending.size === 0) worker.unref();
        if (message.error !== undefined) job.reject(new Error(`embedding worker: ${message.error}`));
        else job.resolve(unpack(message.vectors!, job.texts.length, options.dimension));
        armIdleTimer();
      });
      worker.on('error', (error) => {
        if (!started) reject(error);
        failSlot(slot, error);
      });
      worker.on('exit', (code) => {
        if (!started) reject(new Error(`embedding worker exited with code ${code} before it was ready`));
        failSlot(slot, new Error(`embedding worker exited with code ${code}`));
      });
    });

  const send = (slot: Slot, texts: string[]): Promise<number[][]> =>
    new Promise((resolve, reject) => {
      const job: Job = { id: nextId++, texts, resolve, reject };
      slot.pending.set(job.id, job);
      slot.texts += texts.length;
      slot.worker.ref();
      slot.worker.postMessage({ id: job.id, texts });
    });

  const start = (): Promise<void> => {
    starting ??= (async () => {
      try {
        slots = await Promise.all(Array.from({ length: size }, spawn));
        ready = true;
        armIdleTimer();
      } catch (error) {
        await stopAll();
        throw error;
      }
    })();
    return starting;
  };

  return {
    get ready() {
      return ready;
    },
    start,
    async embed(texts) {
      if (texts.length === 0) return [];
      await start();
      clearTimeout(idleTimer);
      if (slots.length === 0) throw new Error('embedding workers stopped');
      // contiguous slices, the least loaded workers first
      const order = [...slots].sort((a, b) => a.texts - b.texts);
      const per = Math.ceil(texts.length / order.length);
      const parts: Array<Promise<number[][]>> = [];
      for (let i = 0, w = 0; i < texts.length; i += per, w++) parts.push(send(order[w], texts.slice(i, i + per)));
      return (await Promise.all(parts)).flat();
    },
    async close() {
      clearTimeout(idleTimer);
      await stopAll();
    },
  };
}

function unpack(flat: Float64Array, count: number, dimension: number): number[][] {
  const out = new Array<number[]>(count);
  for (let i = 0; i < count; i++) out[i] = Array.from(flat.subarray(i * dimension, (i + 1) * dimension));
  return out;
}
