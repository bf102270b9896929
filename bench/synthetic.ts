/** Deterministic synthetic memories for load and scale benchmarks (a seeded PRNG; no external data). */
export function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SUBJECTS = ['my sister', 'the team', 'our landlord', 'my doctor', 'the client', 'my manager', 'grandma', 'the neighbours', 'my partner', 'the accountant', 'our dog', 'the mechanic', 'my coach', 'the teacher', 'my friend Sam'];
const VERBS = ['recommended', 'booked', 'cancelled', 'moved', 'prefers', 'asked about', 'complained about', 'paid for', 'scheduled', 'forgot', 'loved', 'reviewed', 'ordered', 'returned', 'planned'];
const OBJECTS = ['a trip to Lisbon', 'the quarterly budget', 'a vegetarian lasagna', 'the dentist appointment', 'new running shoes', 'the kitchen renovation', 'a jazz concert', 'the insurance renewal', 'a birthday present', 'the car service', 'a yoga class', 'the flight to Tokyo', 'a book about gardening', 'the electricity bill', 'a hiking weekend', 'the project deadline', 'a piano lesson', 'the tax return', 'a sushi dinner', 'the laptop repair'];
const WHEN = ['on Monday', 'next week', 'last month', 'in spring', 'tomorrow morning', 'after lunch', 'before the holidays', 'on the weekend', 'in two weeks', 'at the end of the year'];
const EXTRA = ['because it was cheaper', 'with a discount code', 'despite the rain', 'after a long discussion', 'for the second time', 'without telling anyone', 'as a surprise', 'to save time', 'on short notice', 'with great excitement'];

export function syntheticMemories(n: number, seed = 42): string[] {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`${pick(SUBJECTS)} ${pick(VERBS)} ${pick(OBJECTS)} ${pick(WHEN)} ${pick(EXTRA)} (note ${i}).`);
  return out;
}

export function syntheticQueries(n: number, seed = 7): string[] {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  return Array.from({ length: n }, () => `what did ${pick(SUBJECTS)} say about ${pick(OBJECTS)} ${pick(WHEN)}?`);
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

export function table(title: string, headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [`\n### ${title}\n`, line(headers), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map((r) => line(r.map(String)))].join('\n');
}

/** Runs `fn` over `items` with at most `concurrency` in flight; returns per-item latencies in ms. */
export async function timedPool<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<number[]> {
  const latencies: number[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        const t0 = performance.now();
        await fn(items[i], i);
        latencies[i] = performance.now() - t0;
      }
    }),
  );
  return latencies;
}
