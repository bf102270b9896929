import { describe, expect, it } from 'vitest';
import { rankCandidates } from '#shared/services/memory-service.ts';
import { DEFAULT_WEIGHTS, RECENCY_HALF_LIFE_DAYS, scoreMemory } from '#shared/services/scoring.ts';
import { luhnValid, refusalReason } from '#shared/services/refusal-policy.ts';
import { chooseRoute } from '#shared/services/recall-service.ts';

const now = new Date('2026-06-01T12:00:00Z');
const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000);

describe('recall scoring', () => {
  it('ranks a newer memory above an older equally similar one when recency weighs heavily', () => {
    const candidates = [
      { id: 1, semantic: 0.8, lexical: 0.5, createdAt: daysAgo(90), importance: 0.5 },
      { id: 2, semantic: 0.8, lexical: 0.5, createdAt: daysAgo(1), importance: 0.5 },
    ];
    const ranked = rankCandidates(candidates, { weights: { semantic: 0.2, recency: 0.8, importance: 0 }, degraded: false, now, k: 2 });
    expect(ranked.map((r) => r.id)).toEqual([2, 1]);
    expect(ranked[0].score - ranked[1].score).toBeGreaterThan(0.5);
  });

  it('lets similarity win over age with the default weights', () => {
    const ranked = rankCandidates([
      { id: 1, semantic: 0.9, lexical: 0.5, createdAt: daysAgo(120), importance: 0.5 },
      { id: 2, semantic: 0.3, lexical: 0, createdAt: daysAgo(0), importance: 0.5 },
    ], { degraded: false, now, k: 2 });
    expect(ranked.map((r) => r.id)).toEqual([1, 2]);
  });

  it('ranks the more important of two identical memories first when importance is weighted', () => {
    const ranked = rankCandidates([
      { id: 1, semantic: 0.6, lexical: 0, createdAt: daysAgo(3), importance: 0.1 },
      { id: 2, semantic: 0.6, lexical: 0, createdAt: daysAgo(3), importance: 0.9 },
    ], { weights: { importance: 1 }, degraded: false, now, k: 2 });
    expect(ranked.map((r) => r.id)).toEqual([2, 1]);
  });

  it('halves recency every half-life and blends relevance from cosine and lexical overlap', () => {
    const b = scoreMemory({ semantic: 0.8, lexical: 0.4, createdAt: daysAgo(RECENCY_HALF_LIFE_DAYS), importance: 0.7, now });
    expect(b.recency).toBeCloseTo(0.5, 10);
    expect(b.relevance).toBeCloseTo(0.75 * 0.8 + 0.25 * 0.4, 10);
    const total = DEFAULT_WEIGHTS.semantic + DEFAULT_WEIGHTS.recency + DEFAULT_WEIGHTS.importance;
    expect(b.final).toBeCloseTo((DEFAULT_WEIGHTS.semantic * b.relevance + DEFAULT_WEIGHTS.recency * 0.5 + DEFAULT_WEIGHTS.importance * 0.7) / total, 10);
    expect(b.contributions.semantic + b.contributions.recency + b.contributions.importance).toBeCloseTo(b.final, 12);
  });

  it('uses only lexical overlap when the semantic path is degraded, and ignores negative cosine', () => {
    expect(scoreMemory({ semantic: 0.9, lexical: 0.2, createdAt: now, importance: 0, now, degraded: true }).relevance).toBeCloseTo(0.2, 10);
    expect(scoreMemory({ semantic: -0.4, lexical: 0, createdAt: now, importance: 0, now }).semantic).toBe(0);
  });

  it('keeps the same score in rankCandidates and scoreMemory (one function behind query and explain)', () => {
    const c = { id: 7, semantic: 0.55, lexical: 0.25, createdAt: daysAgo(12), importance: 0.8 };
    const weights = { semantic: 1, recency: 0.5, importance: 0.25 };
    const [ranked] = rankCandidates([c], { weights, degraded: false, now, k: 1 });
    expect(ranked.score).toBe(scoreMemory({ ...c, now }, weights).final);
  });
});

describe('refusal policy', () => {
  it.each([
    ['..........  !!!', 'no_content'],
    ['my key is AKIAIOSFODNN7EXAMPLE ok', 'aws_access_key'],
    ['aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'aws_secret_key'],
    ['-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----', 'private_key'],
    ['use ms_live_abcdefghijklmnop1234 for prod', 'memorysync_api_key'],
    ['card 4111 1111 1111 1111 exp 12/29', 'payment_card'],
    ['amex 3782-822463-10005 please', 'payment_card'],
  ])('refuses %j as %s', (text, reason) => {
    expect(refusalReason(text)).toBe(reason);
  });

  it.each([
    'I prefer window seats on long flights.',
    'Order number 4111 1111 1111 1112 shipped',
    'Call me at +1 415 555 0100 tomorrow',
    'The ms_live_ prefix marks production keys',
  ])('stores %j', (text) => {
    expect(refusalReason(text)).toBeNull();
  });

  it('checks card numbers with the Luhn checksum', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
  });
});

describe('routed search rules', () => {
  it.each<[string, { tags?: string[] }, string]>([
    ['#travel #work', {}, 'tag'],
    ['', { tags: ['travel'] }, 'tag'],
    ['notes mentioning "window seat"', {}, 'lexical'],
    ['what was my latest decision', {}, 'recency'],
    ['where do I like to sit on planes', {}, 'semantic'],
  ])('routes %j with filters %j to %s', (query, filters, route) => {
    expect(chooseRoute(query, filters).route).toBe(route);
  });
});
