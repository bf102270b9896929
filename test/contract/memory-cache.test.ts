import { describe, expect, it } from 'vitest';
import { createMemoryCache } from '../../shared/adapters/memory-cache/memory-cache.ts';
import { cacheContract, createManualClock } from './cache.ts';

cacheContract('memory', async () => {
  const clock = createManualClock();
  const cache = createMemoryCache({ clock });
  // separate instances never share entries: that is the memory cache's key isolation
  const neighbour = createMemoryCache({ clock });
  return {
    cache,
    advanceTime: async (ms) => clock.advance(ms),
    openNeighbour: async () => neighbour,
    close: async () => {
      await Promise.all([cache.close(), neighbour.close()]);
    },
  };
});

describe('memory cache', () => {
  it('evicts the least recently used entry once maxEntries is reached', async () => {
    const cache = createMemoryCache({ maxEntries: 3 });
    await cache.set('a', 1, 60);
    await cache.set('b', 2, 60);
    await cache.set('c', 3, 60);
    await cache.get('a');

    await cache.set('d', 4, 60);

    expect(await cache.get('b')).toBeUndefined();
    expect(await cache.get('a')).toBe(1);
    expect(await cache.get('c')).toBe(3);
    expect(await cache.get('d')).toBe(4);
  });

  it('counts an increment as a use, so a busy counter is not evicted', async () => {
    const cache = createMemoryCache({ maxEntries: 2 });
    await cache.incr('busy', 60);
    await cache.set('x', 1, 60);
    await cache.incr('busy', 60);

    await cache.set('y', 2, 60);

    expect(await cache.get('x')).toBeUndefined();
    expect(await cache.get('busy')).toBe(2);
  });

  it('serves JSON copies, so a Date comes back as its ISO string as it would from Redis', async () => {
    const cache = createMemoryCache();
    await cache.set('when', { at: new Date('2025-03-04T05:06:07.000Z') }, 60);

    expect(await cache.get('when')).toEqual({ at: '2025-03-04T05:06:07.000Z' });
  });
});
