import { describe, expect, it } from 'vitest';
import { chunkText } from '#shared/integrations/chunking.ts';
import { htmlToText } from '#shared/integrations/crawler.ts';

describe('chunkText', () => {
  it('keeps short text as one chunk', () => {
    expect(chunkText('  one short note \n')).toEqual(['one short note']);
    expect(chunkText('   ')).toEqual([]);
  });

  it('cuts long text near the size at word boundaries, with overlap, losing no words', () => {
    const words = Array.from({ length: 900 }, (_, i) => `word${i}`);
    const chunks = chunkText(words.join(' '), { size: 2000, overlap: 200 });
    expect(chunks.length).toBeGreaterThan(3);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(2000);
    for (const c of chunks) expect(c).toMatch(/^word\d+( word\d+)*$/);
    // Consecutive chunks share words, and together they hold every word.
    for (let i = 1; i < chunks.length; i++) {
      const lastOfPrev = chunks[i - 1]!.split(' ').at(-1)!;
      expect(chunks[i]!.split(' ')).toContain(lastOfPrev);
    }
    expect(new Set(chunks.flatMap((c) => c.split(' ')))).toEqual(new Set(words));
  });
});

describe('htmlToText', () => {
  it('keeps visible text and same-origin links, drops scripts, styles and other origins', () => {
    const base = new URL('https://docs.example.com/guide/');
    const { title, text, links } = htmlToText(
      '<html><head><title>Guide</title><style>p{}</style></head><body><script>var secret = 1;</script><h1>Setup</h1><p>Install the <b>agent</b>.</p>' +
      '<a href="step-2#x">next</a><a href="https://evil.example/">out</a><a href="/">home</a></body></html>', base);
    expect(title).toBe('Guide');
    expect(text).toContain('Setup');
    expect(text).toContain('Install the agent.');
    expect(text).not.toContain('secret');
    expect(links.map((l) => l.href)).toEqual(['https://docs.example.com/guide/step-2', 'https://docs.example.com/']);
  });
});
