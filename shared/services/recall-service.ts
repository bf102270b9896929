import { AppError, notFound, validationError } from '../errors.ts';
import type { Summarizer } from '../ports/summarizer.ts';
import type { TokenCounter } from '../text/token-counter.ts';
import type { AuditMeta } from './identity-service.ts';
import type { Memory, ScoredMemory } from './memory-model.ts';
import type { MemoryService, QueryFilters, QueryInput } from './memory-service.ts';
import type { EndUserScope } from './scope.ts';

export interface RecallServiceDeps {
  memories: MemoryService;
  summarizer: Summarizer;
  /** loaded on first compose (building the BPE ranks takes a moment) */
  tokenCounter: () => Promise<TokenCounter>;
}

export const DEFAULT_SYSTEM_PROMPT = 'You are a helpful assistant. Use the memories below about the user when they are relevant; do not invent facts that are not in them.';
export const DEFAULT_TEMPLATE = '{system_prompt}\n\nRelevant memories:\n{memories}\n\nUser: {query}';

export type Route = 'tag' | 'lexical' | 'recency' | 'semantic';

const HASHTAG = /(?:^|\s)#([\p{L}\p{N}_][\p{L}\p{N}_:-]*)/gu;
const QUOTED = /"([^"]{2,200})"|“([^”]{2,200})”/g;
const RECENCY_WORDS = /\b(latest|newest|recent|recently|most recent|last)\b/i;

/**
 * Decides the route of /memory/search/routed (rules in docs/recall.md, first match wins):
 * 1. tag — the query is only #hashtags (or empty with filters.tags);
 * 2. lexical — the query holds a "quoted phrase";
 * 3. recency — the query asks for the latest/most recent/last memories;
 * 4. semantic — everything else (the /memory/query ranking).
 */
export function chooseRoute(query: string, filters: QueryFilters = {}): { route: Route; tags: string[]; phrases: string[]; reason: string } {
  const tags = [...query.matchAll(HASHTAG)].map((m) => m[1]);
  const rest = query.replace(HASHTAG, ' ').trim();
  if (tags.length && !rest) return { route: 'tag', tags: [...new Set([...tags, ...(filters.tags ?? [])])], phrases: [], reason: 'the query is only #tags' };
  if (!query.trim() && filters.tags?.length) return { route: 'tag', tags: filters.tags, phrases: [], reason: 'no query text; filters.tags given' };
  const phrases = [...query.matchAll(QUOTED)].map((m) => (m[1] ?? m[2]).trim()).filter((p) => p.length >= 2);
  if (phrases.length) return { route: 'lexical', tags, phrases, reason: 'the query contains a quoted phrase' };
  if (RECENCY_WORDS.test(query)) return { route: 'recency', tags, phrases: [], reason: 'the query asks for recent memories' };
  return { route: 'semantic', tags, phrases: [], reason: 'free text: semantic recall' };
}

/**
 * Recall features on top of the memory core: summaries of chosen memories, prompts composed within a
 * token budget, and a query router over semantic, lexical, recency and tag search.
 */
export class RecallService {
  constructor(private readonly deps: RecallServiceDeps) {}

  /**
   * Summarises the given memories (readable ones of this end user; others are reported missing) and,
   * unless `store` is false, stores the summary as a memory with is_summary true, linked to its sources.
   */
  async summarize(scope: EndUserScope, input: { memory_ids: number[]; max_sentences?: number; store?: boolean }, meta: AuditMeta) {
    const found = await this.deps.memories.getMany(scope, input.memory_ids);
    if (found.length === 0) throw notFound('None of the memories exist for this end user');
    const sourceIds = found.map((m) => m.id);
    const summary = await this.deps.summarizer.summarize(found.map((m) => m.text), { maxSentences: input.max_sentences ?? 3 });
    let stored: Memory | null = null;
    if (input.store !== false && summary.trim().length >= 10) {
      const tags = [...new Set(found.flatMap((m) => m.tags))].slice(0, 50);
      const importance = Math.max(...found.map((m) => m.importance));
      const outcome = await this.deps.memories.add(
        scope,
        { text: summary, source: 'summarizer', tags, importance, is_summary: true, memory_type: 'summary', metadata: { summary_of: sourceIds }, links: { to: sourceIds, kind: 'summarizes' } },
        meta,
        { auditEvent: 'memory.summarize' },
      );
      if (outcome.status === 'created') stored = outcome.memory;
    }
    return {
      summary,
      memory_ids: sourceIds,
      missing_ids: input.memory_ids.filter((id) => !sourceIds.includes(id)),
      summary_memory: stored,
    };
  }

  /**
   * A prompt of template + memories within `token_budget` tokens (cl100k_base): memories are taken in
   * score order and added while the whole prompt still fits; the first that does not fit ends the list.
   */
  async compose(scope: EndUserScope, input: QueryInput & { token_budget: number; system_prompt?: string; template?: string }) {
    const counter = await this.deps.tokenCounter();
    const template = input.template ?? DEFAULT_TEMPLATE;
    const render = (lines: string[]) =>
      template
        .replaceAll('{system_prompt}', input.system_prompt ?? DEFAULT_SYSTEM_PROMPT)
        .replaceAll('{query}', input.query)
        .replaceAll('{memories}', lines.length ? lines.join('\n') : '(none)');
    const base = counter.count(render([]));
    if (base > input.token_budget) {
      throw validationError(`token_budget: the template, system prompt and query alone take ${base} tokens, over the budget of ${input.token_budget}`, [{ loc: ['body', 'token_budget'], msg: `at least ${base} tokens are needed`, type: 'too_small' }]);
    }
    const result = await this.deps.memories.query(scope, input);
    const lines: string[] = [];
    const included: Array<{ memory: ScoredMemory; tokens: number }> = [];
    let tokensUsed = base;
    for (const memory of result.memories) {
      const line = `- ${memory.text.replace(/\s+/g, ' ').trim()}`;
      const total = counter.count(render([...lines, line]));
      if (total > input.token_budget) break;
      lines.push(line);
      included.push({ memory, tokens: counter.count(line) });
      tokensUsed = total;
    }
    return {
      prompt: render(lines),
      memories: included,
      tokens_used: tokensUsed,
      token_budget: input.token_budget,
      tokenizer: counter.encoding,
      candidates: result.memories.length,
      degraded: result.degraded,
    };
  }

  /** Routes the query (see chooseRoute) and runs the chosen search; results are newest or best first. */
  async routedSearch(scope: EndUserScope, input: { query: string; k: number; filters?: QueryFilters; weights?: QueryInput['weights'] }) {
    const filters = input.filters ?? {};
    const decision = chooseRoute(input.query, filters);
    switch (decision.route) {
      case 'tag': {
        const { memories } = await this.deps.memories.list(scope, { limit: input.k, filters: { ...filters, tags: decision.tags } });
        return { ...decision, results: memories.map((m) => ({ memory: m, score: null })), degraded: false };
      }
      case 'lexical': {
        const { memories, scanned } = await this.deps.memories.phraseSearch(scope, decision.phrases, filters, input.k);
        return { ...decision, results: memories.map((m) => ({ memory: m, score: 1 })), degraded: false, scanned };
      }
      case 'recency': {
        const { memories } = await this.deps.memories.list(scope, { limit: input.k, filters });
        return { ...decision, results: memories.map((m) => ({ memory: m, score: null })), degraded: false };
      }
      default: {
        if (!input.query.trim()) throw new AppError('VALIDATION_ERROR', 422, 'query: Field required', [{ loc: ['body', 'query'], msg: 'Field required', type: 'missing' }]);
        const result = await this.deps.memories.query(scope, { query: input.query, k: input.k, filters, weights: input.weights });
        return { ...decision, results: result.memories.map((m) => ({ memory: m as Memory, score: m.score })), degraded: result.degraded };
      }
    }
  }
}
