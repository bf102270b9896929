import { afterAll, describe, expect, it } from 'vitest';
import { startTarget, type Target, type TargetKind } from './support.ts';
import { checkWriteInvariant, createPopulation, MixedWorkload, runLoad, statusSummary } from './load.ts';
import { recordTable, type Profile } from './report.ts';

const SIZES: Record<Profile, { connections: number; durationSec: number }> = {
  full: { connections: 200, durationSec: 60 },
  fast: { connections: 20, durationSec: 5 },
};

/**
 * Load: the mixed workload against one target, then the write invariant. Errors by status are
 * reported; any 5xx fails the run (nothing in the workload is a documented 503 while all is up).
 */
export function loadSuite(profile: Profile, kinds: TargetKind[] = ['embedded', 'postgres']) {
  const size = SIZES[profile];
  describe(`load (${profile}: ${size.connections} connections × ${size.durationSec} s, 70 % query / 25 % add / 5 % get-patch-forget)`, { timeout: profile === 'full' ? 900_000 : 240_000 }, () => {
    const targets: Target[] = [];
    afterAll(async () => {
      for (const t of targets) await t.close();
    });

    for (const kind of kinds) {
      it(`holds on ${kind}: no 5xx, every acknowledged write is in the database and the vector index, nothing else is`, async () => {
        const target = await startTarget(kind);
        targets.push(target);
        const workload = new MixedWorkload(await createPopulation(target.server, 3, 100));
        await workload.seed(target.server);
        const result = await runLoad(target.server, workload, size);
        const inv = await checkWriteInvariant(target.server, workload);

        recordTable({
          section: 'load',
          title: `${target.label} — ${size.connections} connections × ${size.durationSec} s`,
          columns: ['requests', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'responses by status', 'client errors / timeouts', 'answered by op', 'acked writes', 'lost', 'not indexed', 'rows without ack (≤ unanswered adds)'],
          rows: [[result.requests, result.rps, result.p50, result.p95, result.p99, statusSummary(result.byStatus), `${result.clientErrors} / ${result.timeouts}`,
            Object.entries(result.byOp).map(([k, v]) => `${k} ${v}`).join(', '), inv.acked, inv.lost.length, inv.notIndexed.length, `${inv.unexplained} (≤ ${inv.unanswered})`]],
          notes: [`3 tenants, 100 end users; every end user seeded with one memory before the run; ${inv.pendingAfterDrain} rows still pending after the outbox sweep and queue drain.`],
        });

        const fiveXx = Object.entries(result.byStatus).filter(([code]) => Number(code) >= 500);
        expect(fiveXx, `5xx answers: ${statusSummary(result.byStatus)}`).toEqual([]);
        expect(result.requests).toBeGreaterThan(0);
        expect(inv.lost, 'acknowledged writes missing from the database').toEqual([]);
        expect(inv.notIndexed, 'acknowledged writes missing from the vector index').toEqual([]);
        expect(inv.resurrected, 'forgotten memories still stored').toEqual([]);
        expect(inv.orphanVectors).toBe(0);
        expect(inv.pendingAfterDrain).toBe(0);
        expect(inv.unexplained).toBeLessThanOrEqual(inv.unanswered);
      });
    }
  });
}
