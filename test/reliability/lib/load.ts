import autocannon, { type AutocannonRequest, type AutocannonResult } from 'autocannon';
import { namespaceForUser } from '../../../shared/ports/vector-store.ts';
import type { TestServer } from '../../support/server.ts';
import { pool } from './http.ts';
import { percentile } from './report.ts';

export interface LoadOptions {
  connections: number;
  durationSec: number;
  tenants?: number;
  endUsers?: number;
  /** called once while the load runs (fault injection); resolved before the run's results are read */
  during?: () => Promise<void>;
}

export interface Population {
  tenants: Array<{ apiKey: string; tenantId: string; projectId: string }>;
  /** end user i belongs to tenant i % tenants */
  endUsers: string[];
}

export interface LoadResult {
  requests: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  byStatus: Record<string, number>;
  clientErrors: number;
  timeouts: number;
  byOp: Record<string, number>;
  adds: { sent: number; acked: number; unanswered: number };
}

export interface InvariantReport {
  acked: number;
  stored: number;
  /** acked and not deleted, but not in the database */
  lost: number[];
  /** acked and not deleted, in the database, but not in the vector index */
  notIndexed: number[];
  /** rows no acknowledged write explains */
  unexplained: number;
  /** adds whose answer the client never got: they may or may not exist */
  unanswered: number;
  /** deleted by an acknowledged forget, still in the database or the index */
  resurrected: number[];
  /** vectors with no row behind them */
  orphanVectors: number;
  pendingAfterDrain: number;
}

const TOPICS = ['my red car needs new tyres', 'the dentist appointment is on friday', 'I prefer green tea to coffee', 'our team ships the release on monday', 'the cat sleeps on the blue sofa', 'I am learning to play the piano', 'grandma lives in a small village by the sea', 'the budget review meeting moved to thursday'];
const QUERIES = ['which automobile do I drive', 'when do I see the dentist', 'what do I like to drink', 'when is the release', 'where does the cat sleep', 'what instrument am I learning', 'where does my grandmother live', 'when is the budget meeting'];

export async function createPopulation(server: TestServer, tenants = 3, endUsers = 100): Promise<Population> {
  const ts = [];
  for (let i = 0; i < tenants; i++) ts.push(await server.newTenant(`load tenant ${i}`));
  return { tenants: ts, endUsers: Array.from({ length: endUsers }, (_, i) => `load-user-${i}`) };
}

/**
 * The mixed workload of the load suite: 70 % query, 25 % add, 5 % get/patch/forget over the end users of
 * a population, driven by autocannon over loopback. Records every acknowledged write and forget so the
 * invariant check can compare them with what the stores hold afterwards.
 */
export class MixedWorkload {
  readonly acked = new Map<number, number>(); // memory id → end user index
  readonly live = new Map<number, number[]>(); // end user index → acked, not (being) forgotten ids
  readonly deleted = new Set<number>();
  readonly maybeDeleted = new Set<number>();
  readonly answered: Record<string, number> = { query: 0, add: 0, get: 0, patch: 0, forget: 0 };
  addsSent = 0;
  addsAnswered = 0;
  private counter = 0;
  private readonly runId = Math.random().toString(36).slice(2, 8);

  constructor(readonly population: Population) {}

  headers(userIndex: number): Record<string, string> {
    const t = this.population.tenants[userIndex % this.population.tenants.length];
    return { 'content-type': 'application/json', 'x-api-key': t.apiKey, 'x-end-user-id': this.population.endUsers[userIndex] };
  }

  addText(): string {
    const n = this.counter++;
    return `${TOPICS[n % TOPICS.length]} (note ${this.runId}-${n})`;
  }

  recordAck(userIndex: number, id: number): void {
    this.acked.set(id, userIndex);
    const list = this.live.get(userIndex) ?? [];
    list.push(id);
    this.live.set(userIndex, list);
  }

  /** one memory per end user before the run, so get/patch/forget have targets from the first second */
  async seed(server: TestServer): Promise<void> {
    await pool(this.population.endUsers.map((_, u) => u), 8, async (u) => {
      this.addsSent++;
      const res = await server.call('POST', '/memory/add', { headers: this.headers(u), body: { text: this.addText() } });
      this.addsAnswered++;
      if (res.status !== 201) throw new Error(`seed add answered ${res.status}: ${JSON.stringify(res.body)}`);
      this.recordAck(u, Number(res.body.id));
    });
  }

  private pickLive(u: number): number | undefined {
    const list = this.live.get(u);
    if (!list?.length) return undefined;
    return list[Math.floor(Math.random() * list.length)];
  }

  request(): AutocannonRequest {
    return {
      setupRequest: (req, context) => {
        const u = Math.floor(Math.random() * this.population.endUsers.length);
        const r = Math.random();
        const headers = this.headers(u);
        context.user = u;
        if (r < 0.25) {
          context.op = 'add';
          this.addsSent++;
          return { ...req, method: 'POST', path: '/memory/add', headers, body: JSON.stringify({ text: this.addText(), tags: ['load'] }) };
        }
        const id = r >= 0.95 ? this.pickLive(u) : undefined;
        if (id !== undefined) {
          const which = Math.floor(((r - 0.95) / 0.05) * 3);
          context.id = id;
          if (which === 0) {
            context.op = 'get';
            return { ...req, method: 'GET', path: `/memory/${id}`, headers, body: undefined };
          }
          if (which === 1) {
            context.op = 'patch';
            return { ...req, method: 'PATCH', path: `/memory/${id}`, headers, body: JSON.stringify({ tags: ['load', 'patched'], importance: 0.8 }) };
          }
          context.op = 'forget';
          const list = this.live.get(u)!;
          list.splice(list.indexOf(id), 1);
          this.maybeDeleted.add(id);
          return { ...req, method: 'DELETE', path: '/memory/forget', headers, body: JSON.stringify({ memory_ids: [id] }) };
        }
        context.op = 'query';
        return { ...req, method: 'POST', path: '/memory/query', headers, body: JSON.stringify({ query: QUERIES[Math.floor(Math.random() * QUERIES.length)], k: 5 }) };
      },
      onResponse: (status, body, context) => {
        const u = context.user as number;
        this.answered[context.op as string]++;
        if (context.op === 'add') {
          this.addsAnswered++;
          if (status === 201) this.recordAck(u, Number((JSON.parse(body) as { id: number }).id));
        } else if (context.op === 'forget' && status === 200) {
          const id = context.id as number;
          const answer = JSON.parse(body) as { deleted_ids: number[] };
          if (answer.deleted_ids.includes(id)) {
            this.deleted.add(id);
            this.maybeDeleted.delete(id);
          }
        }
      },
    };
  }
}

export async function runLoad(server: TestServer, workload: MixedWorkload, options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  let result!: AutocannonResult;
  let duringError: unknown;
  await new Promise<void>((resolve, reject) => {
    const instance = autocannon(
      { url: server.url, connections: options.connections, duration: options.durationSec, timeout: 10, requests: [workload.request()] },
      (err, r) => {
        if (err) reject(err);
        else {
          result = r;
          resolve();
        }
      },
    );
    instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => latencies.push(responseTime));
    if (options.during) {
      options.during().catch((err) => {
        duringError = err;
        instance.stop();
      });
    }
  });
  if (duringError) throw duringError;
  latencies.sort((a, b) => a - b);
  const byStatus: Record<string, number> = {};
  for (const [code, s] of Object.entries(result.statusCodeStats ?? {})) byStatus[code] = s.count;
  return {
    requests: latencies.length,
    rps: Math.round(latencies.length / Math.max(1, result.duration)),
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    byStatus,
    clientErrors: result.errors,
    timeouts: result.timeouts,
    byOp: { ...workload.answered },
    adds: { sent: workload.addsSent, acked: workload.acked.size, unanswered: workload.addsSent - workload.addsAnswered },
  };
}

/**
 * After the run: relay what the outbox still holds, run the queue until idle, then compare the stores
 * with the acknowledgements. acked − forgotten ⊆ rows ∩ vectors; rows − acked ≤ unanswered adds.
 */
export async function checkWriteInvariant(server: TestServer, workload: MixedWorkload): Promise<InvariantReport> {
  await server.app.relay.sweep({ olderThanMs: 0 });
  await server.queue?.runUntilIdle();
  const tenantIds = workload.population.tenants.map((t) => t.tenantId);
  const rows = await server.app.db.kysely.selectFrom('memories').select(['id', 'user_id', 'embedding_status']).where('tenant_id', 'in', tenantIds).execute();
  const stored = new Map(rows.map((r) => [Number(r.id), r]));
  const users = await server.app.db.kysely.selectFrom('users').select('id').where('tenant_id', 'in', tenantIds).where('kind', '=', 'end_user').execute();
  const indexed = new Set<number>();
  for (const u of users) for (const id of await server.app.vectors.listIds(namespaceForUser(u.id))) indexed.add(id);

  const lost: number[] = [];
  const notIndexed: number[] = [];
  for (const id of workload.acked.keys()) {
    if (workload.deleted.has(id) || workload.maybeDeleted.has(id)) continue;
    if (!stored.has(id)) lost.push(id);
    else if (!indexed.has(id)) notIndexed.push(id);
  }
  const resurrected = [...workload.deleted].filter((id) => stored.has(id) || indexed.has(id));
  const unexplained = [...stored.keys()].filter((id) => !workload.acked.has(id)).length;
  return {
    acked: workload.acked.size,
    stored: stored.size,
    lost,
    notIndexed,
    unexplained,
    unanswered: workload.addsSent - workload.addsAnswered,
    resurrected,
    orphanVectors: [...indexed].filter((id) => !stored.has(id)).length,
    pendingAfterDrain: rows.filter((r) => r.embedding_status !== 'ready').length,
  };
}

export const statusSummary = (byStatus: Record<string, number>): string =>
  Object.entries(byStatus).sort(([a], [b]) => a.localeCompare(b)).map(([code, n]) => `${code}: ${n}`).join(', ');
