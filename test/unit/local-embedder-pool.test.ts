import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { syntheticMemories } from '../../bench/synthetic.ts';
import { createLocalEmbedder } from '../../shared/adapters/local-embedder/index.ts';

const texts = [...syntheticMemories(300, 5), '', '   ', '🙂🙂', "I can't won't café naïve Straße 東京 don't", 'x'.repeat(40_000)];
const digest = (vectors: number[][]) => {
  const h = createHash('sha256');
  for (const v of vectors) h.update(Buffer.from(Float64Array.from(v).buffer));
  return h.digest('hex');
};

describe('local embedder worker pool', () => {
  const pooled = createLocalEmbedder({ workers: 2, poolMinBatch: 16 });
  afterAll(async () => {
    await pooled.close?.();
  });

  it('gives bit-for-bit the vectors of the calling thread, in input order, and of the model as released', async () => {
    await pooled.warmBulk?.();
    const fromPool = await pooled.embed(texts);
    expect(pooled.stats.pooled).toBe(texts.length);
    expect(pooled.stats.inThread).toBe(0);
    const here = createLocalEmbedder();
    const fromThread = await here.embed(texts);
    expect(here.stats).toMatchObject({ inThread: texts.length, pooled: 0 });
    expect(fromPool).toEqual(fromThread);
    // local-sif-wink100-v1 as computed before the pool existed (commit 8ade0ac): a changed digest
    // means the model's output changed, which needs a new LOCAL_EMBEDDER_MODEL version
    expect(digest(fromPool)).toBe('ce85cb7cfbc017237d9e353b33ea34f8a963de4f89fe6b0308f7c3c3de5ae5cb');
  });

  it('keeps small batches on the calling thread, and serves concurrent big batches from the same workers', async () => {
    const before = { ...pooled.stats };
    await pooled.embed(texts.slice(0, 3));
    expect(pooled.stats.inThread - before.inThread).toBe(3);
    const [a, b] = await Promise.all([pooled.embed(texts.slice(0, 100)), pooled.embed(texts.slice(100, 200))]);
    expect(pooled.stats.pooled - before.pooled).toBe(200);
    expect([...a, ...b]).toEqual(await createLocalEmbedder().embed(texts.slice(0, 200)));
  });

  it('gives up a pool whose workers cannot start, without hanging or an unhandled rejection', async () => {
    const broken = createLocalEmbedder({ workers: 2, poolMinBatch: 1, vocabularyPath: '/nonexistent/vocabulary.bin' });
    // the first big batch starts the workers in the background and is embedded on the calling thread,
    // which cannot load that vocabulary either: the caller gets the embedder's own error
    await expect(broken.embed(['hello'])).rejects.toThrow(/ENOENT/);
    await vi.waitFor(() => expect(broken.stats.poolFailures).toBe(1), { timeout: 20_000 });
    await expect(broken.embed(['hello'])).rejects.toThrow(/ENOENT/);
    expect(broken.stats).toMatchObject({ pooled: 0, poolFailures: 1 });
    await broken.close?.();
  });
});
