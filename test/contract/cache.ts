import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Cache } from '../../shared/ports/cache.ts';
import type { Clock } from '../../shared/ports/clock.ts';

/** What each adapter's test file hands the contract suite. */
export interface CacheUnderTest {
  cache: Cache;
  /** lets `ms` pass for the cache's TTLs: a manual clock, or TTLs shortened in the store */
  advanceTime(ms: number): Promise<void>;
  /** another cache with its own key space (another prefix over the same store, where stores are shared) */
  openNeighbour(): Promise<Cache>;
  /** closes everything the factory opened, including neighbours */
  close(): Promise<void>;
}

export interface ManualClock extends Clock {
  advance(ms: number): void;
}

/** A clock that only moves when told to, so TTL behaviour is tested without sleeping. */
export function createManualClock(startIso = '2025-01-01T00:00:00.000Z'): ManualClock {
  let nowMs = Date.parse(startIso);
  return {
    now: () => new Date(nowMs),
    advance(ms) {
      nowMs += ms;
    },
  };
}

/** The Cache port's contract: every adapter runs exactly these tests. */
export function cacheContract(name: string, factory: () => Promise<CacheUnderTest>): void {
  describe(`Cache contract: ${name}`, () => {
    let subject: CacheUnderTest;
    let cache: Cache;

    beforeEach(async () => {
      subject = await factory();
      cache = subject.cache;
    });

    afterEach(async () => {
      await subject.close();
    });

    it('round-trips objects, arrays, strings, numbers, booleans and null', async () => {
      const profile = { name: 'Ada', tags: ['math', 'engines'], nested: { born: 1815, alive: false } };
      await cache.set('profile', profile, 60);
      await cache.set('list', [1, 'two', { three: 3 }], 60);
      await cache.set('word', 'hello', 60);
      await cache.set('empty-string', '', 60);
      await cache.set('number', 42.5, 60);
      await cache.set('zero', 0, 60);
      await cache.set('flag', false, 60);
      await cache.set('nothing', null, 60);

      expect(await cache.get('profile')).toEqual(profile);
      expect(await cache.get('list')).toEqual([1, 'two', { three: 3 }]);
      expect(await cache.get('word')).toBe('hello');
      expect(await cache.get('empty-string')).toBe('');
      expect(await cache.get('number')).toBe(42.5);
      expect(await cache.get('zero')).toBe(0);
      expect(await cache.get('flag')).toBe(false);
      expect(await cache.get('nothing')).toBeNull();
    });

    it('answers undefined for a key that was never set', async () => {
      expect(await cache.get('never-set')).toBeUndefined();
    });

    it('stores a copy, so mutating the original or a read value changes nothing cached', async () => {
      const original = { count: 1, items: ['a'] };
      await cache.set('copy', original, 60);
      original.count = 2;
      original.items.push('b');

      const firstRead = await cache.get<{ count: number; items: string[] }>('copy');
      firstRead!.items.push('c');

      expect(await cache.get('copy')).toEqual({ count: 1, items: ['a'] });
    });

    it('keeps a value until its TTL has passed and forgets it afterwards', async () => {
      await cache.set('session', { user: 'u1' }, 10);

      await subject.advanceTime(9_000);
      expect(await cache.get('session')).toEqual({ user: 'u1' });

      await subject.advanceTime(1_001);
      expect(await cache.get('session')).toBeUndefined();
    });

    it('replaces the value and restarts the TTL when a key is set again', async () => {
      await cache.set('doc', 'v1', 10);
      await subject.advanceTime(8_000);
      await cache.set('doc', 'v2', 10);
      await subject.advanceTime(8_000);

      expect(await cache.get('doc')).toBe('v2');
    });

    it('deletes several keys at once and leaves the others alone', async () => {
      await cache.set('a', 1, 60);
      await cache.set('b', 2, 60);
      await cache.set('c', 3, 60);

      await cache.del('a', 'b', 'not-there');
      await cache.del();

      expect(await cache.get('a')).toBeUndefined();
      expect(await cache.get('b')).toBeUndefined();
      expect(await cache.get('c')).toBe(3);
    });

    it('deletes every entry under a prefix, counts them, and leaves lookalike keys alone', async () => {
      await cache.set('q:t1:7:0:aaa', [1], 60);
      await cache.set('q:t1:7:3:bbb', [2], 60);
      await cache.incr('q:t1:7:counter', 60);
      await cache.set('q:t1:70:0:ccc', [3], 60); // another end user whose id starts with the same digit
      await cache.set('q:t2:7:0:ddd', [4], 60);
      await cache.set('qgen:t1:7', 5, 60);

      expect(await cache.deletePrefix('q:t1:7:')).toBe(3);

      expect(await cache.get('q:t1:7:0:aaa')).toBeUndefined();
      expect(await cache.get('q:t1:7:3:bbb')).toBeUndefined();
      expect(await cache.get('q:t1:7:counter')).toBeUndefined();
      expect(await cache.get('q:t1:70:0:ccc')).toEqual([3]);
      expect(await cache.get('q:t2:7:0:ddd')).toEqual([4]);
      expect(await cache.get('qgen:t1:7')).toBe(5);
      expect(await cache.deletePrefix('q:t1:7:')).toBe(0);
    });

    it('treats glob characters in a prefix literally', async () => {
      await cache.set('p*:x', 1, 60);
      await cache.set('p?:x', 2, 60);
      await cache.set('p[a]:x', 3, 60);
      await cache.set('p\\:x', 4, 60);
      await cache.set('pa:x', 5, 60);

      expect(await cache.deletePrefix('p*')).toBe(1);
      expect(await cache.deletePrefix('p?')).toBe(1);
      expect(await cache.deletePrefix('p[a]')).toBe(1);
      expect(await cache.deletePrefix('p\\')).toBe(1);

      expect(await cache.get('pa:x')).toBe(5);
    });

    it('deletes a prefix spanning many scan batches', async () => {
      await Promise.all(Array.from({ length: 1_200 }, (_, i) => cache.set(`bulk:${i}`, i, 60)));
      await cache.set('keep:1', 1, 60);

      expect(await cache.deletePrefix('bulk:')).toBe(1_200);

      expect(await cache.get('bulk:0')).toBeUndefined();
      expect(await cache.get('bulk:1199')).toBeUndefined();
      expect(await cache.get('keep:1')).toBe(1);
    });

    it('does not count expired entries, and refuses an empty prefix', async () => {
      await cache.set('ttl:short', 1, 1);
      await cache.set('ttl:long', 2, 60);
      await subject.advanceTime(1_500);

      expect(await cache.deletePrefix('ttl:')).toBe(1);
      await expect(cache.deletePrefix('')).rejects.toThrow(TypeError);
    });

    it('creates a counter at 1 whose window starts at creation and is not extended by increments', async () => {
      expect(await cache.incr('rate:tenant-1', 10)).toBe(1);
      await subject.advanceTime(6_000);
      expect(await cache.incr('rate:tenant-1', 10)).toBe(2);
      expect(await cache.get('rate:tenant-1')).toBe(2);

      await subject.advanceTime(4_001);
      expect(await cache.get('rate:tenant-1')).toBeUndefined();
      expect(await cache.incr('rate:tenant-1', 10)).toBe(1);
    });

    it('counts 200 concurrent increments exactly once each', async () => {
      const counts = await Promise.all(Array.from({ length: 200 }, () => cache.incr('hits', 60)));

      const sorted = counts.map(Number).sort((x, y) => x - y);
      expect(sorted).toEqual(Array.from({ length: 200 }, (_, index) => index + 1));
      expect(await cache.get('hits')).toBe(200);
    });

    it('answers undefined when incrementing a key that holds something other than a counter', async () => {
      await cache.set('not-a-counter', { value: 1 }, 60);

      expect(await cache.incr('not-a-counter', 60)).toBeUndefined();
      expect(await cache.get('not-a-counter')).toEqual({ value: 1 });
    });

    it('keeps the key spaces of two caches apart', async () => {
      const neighbour = await subject.openNeighbour();
      await cache.set('shared-name', 'mine', 60);
      await neighbour.set('shared-name', 'theirs', 60);
      await neighbour.incr('shared-counter', 60);

      expect(await cache.get('shared-name')).toBe('mine');
      expect(await cache.get('shared-counter')).toBeUndefined();
      await neighbour.del('shared-name');
      expect(await cache.get('shared-name')).toBe('mine');
      expect(await neighbour.deletePrefix('shared-')).toBe(1); // its own counter, not my entry
      expect(await cache.get('shared-name')).toBe('mine');
      expect(await neighbour.get('shared-name')).toBeUndefined();
    });

    it('reports healthy while open, and after close answers misses without throwing', async () => {
      await cache.set('before-close', 1, 60);
      expect(await cache.healthy()).toBe(true);

      await cache.close();

      expect(await cache.get('before-close')).toBeUndefined();
      await expect(cache.set('after-close', 1, 60)).resolves.toBeUndefined();
      await expect(cache.del('before-close')).resolves.toBeUndefined();
      expect(await cache.incr('after-close-counter', 60)).toBeUndefined();
      expect(await cache.deletePrefix('before')).toBeUndefined();
      expect(await cache.healthy()).toBe(false);
    });
  });
}
