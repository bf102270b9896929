import type { Clock } from '#shared/ports/clock.ts';
import { keyHeaders, type TestServer } from './server.ts';

/** A clock tests move by hand (AdapterOverrides.clock): time passes only when told to. */
export class MovableClock implements Clock {
  private at: number;
  constructor(start = Date.parse('2026-01-05T10:00:00.000Z')) {
    this.at = start;
  }
  now(): Date {
    return new Date(this.at);
  }
  advanceDays(days: number): void {
    this.at += days * 86_400_000;
  }
  advanceMinutes(minutes: number): void {
    this.at += minutes * 60_000;
  }
}

/** Stores texts for one end user through POST /memory/bulk-add (50 per call); returns their ids in order. */
export async function seedMemories(server: TestServer, apiKey: string, endUser: string, items: Array<string | Record<string, unknown>>, headers: Record<string, string> = {}): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < items.length; i += 50) {
    const chunk = items.slice(i, i + 50).map((it) => (typeof it === 'string' ? { text: it } : it));
    const res = await server.call('POST', '/memory/bulk-add', { headers: keyHeaders(apiKey, endUser, headers), body: { items: chunk, deduplicate: false } });
    if (res.status !== 207 && res.status !== 200) throw new Error(`bulk-add answered ${res.status}: ${JSON.stringify(res.body)}`);
    const results = [...(res.body.results as Array<{ index: number; status: string; memory_ids: number[] }>)].sort((a, b) => a.index - b.index);
    for (const r of results) {
      if (r.status !== 'created') throw new Error(`bulk-add item ${r.index} was ${r.status}`);
      ids.push(r.memory_ids[0]);
    }
  }
  return ids;
}

/** users.id of an end user (what vector namespaces and worker payloads use). */
export async function endUserId(server: TestServer, tenantId: string, endUser: string): Promise<number> {
  const row = await server.app.db.kysely.selectFrom('users').select('id').where('tenant_id', '=', tenantId).where('external_id', '=', `${tenantId}:${endUser}`).executeTakeFirstOrThrow();
  return row.id;
}

/** Distinct sentences on varied topics, so vectors differ. */
export function sentences(n: number, prefix = ''): string[] {
  const topics = ['sailing boat', 'sourdough bread', 'tax return', 'marathon training', 'piano lessons', 'garden tomatoes', 'kubernetes cluster', 'dentist visit', 'birthday party', 'train tickets', 'chess opening', 'coffee grinder'];
  const verbs = ['planned', 'finished', 'postponed', 'discussed', 'booked', 'reviewed'];
  return Array.from({ length: n }, (_, i) => `${prefix}Note ${i}: I ${verbs[i % verbs.length]} the ${topics[i % topics.length]} with friend number ${Math.floor(i / 3)} on day ${i % 28}.`);
}
