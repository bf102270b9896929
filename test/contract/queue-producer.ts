import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Queue, Task, TaskFamily } from '#shared/ports/queue.ts';

export interface QueueProducerHarness {
  queue: Queue;
  /** every task delivered so far, across all families, each parsed back into a Task */
  receiveAll(): Promise<Task[]>;
}

export const makeTask = (family: TaskFamily, overrides: Partial<Task> = {}): Task => ({
  id: randomUUID(),
  family,
  tenantId: 'tenant-1',
  type: `${family}.run`,
  payload: { memoryId: 42 },
  createdAt: new Date('2025-01-02T03:04:05.678Z').toISOString(),
  ...overrides,
});

const byId = (tasks: Task[]) => [...tasks].sort((a, b) => a.id.localeCompare(b.id));

/**
 * The producer side of the Queue contract: whatever is sent is delivered, once, and intact —
 * ids, families, tenant, payload and timestamps unchanged. Each factory call gets empty queues.
 */
export function queueProducerContract(name: string, factory: () => Promise<QueueProducerHarness>) {
  describe(`Queue producer contract: ${name}`, () => {
    it('delivers a task intact', async () => {
      const { queue, receiveAll } = await factory();
      const task = makeTask('embedding', { payload: { memoryId: 7, text_hash: 'abc', nested: { list: [1, 'two', null] } } });
      await queue.send([task]);
      expect(await receiveAll()).toEqual([task]);
    });

    it('delivers tasks of several families, each exactly once', async () => {
      const { queue, receiveAll } = await factory();
      const tasks = [
        ...Array.from({ length: 23 }, (_, i) => makeTask('embedding', { payload: { i } })),
        ...Array.from({ length: 4 }, (_, i) => makeTask('webhook-delivery', { payload: { i } })),
        makeTask('retention', { tenantId: null, type: 'retention.sweep', payload: {} }),
      ];
      await queue.send(tasks);
      expect(byId(await receiveAll())).toEqual(byId(tasks));
    });

    it('keeps non-ASCII payloads byte for byte', async () => {
      const { queue, receiveAll } = await factory();
      const task = makeTask('summarization', { payload: { title: 'naïve café — 東京 🚀', quote: 'he said "hi"\n', odd: 'a\uFFFEb\u0001c\uD800' } });
      await queue.send([task]);
      expect(await receiveAll()).toEqual([task]);
    });

    it('does nothing when sent no tasks', async () => {
      const { queue, receiveAll } = await factory();
      await queue.send([]);
      expect(await receiveAll()).toEqual([]);
    });
  });
}
