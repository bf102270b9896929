import { beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../shared/ports/embedder.ts';

/** What every Embedder adapter must do; run by one *.test.ts file per adapter. */
export function embedderContract(name: string, factory: () => Embedder | Promise<Embedder>): void {
  describe(`${name} (Embedder contract)`, () => {
    let embedder: Embedder;
    beforeAll(async () => {
      embedder = await factory();
      await embedder.warm();
    });

    const length = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0) / (length(a) * length(b));
    const expectUnitVectors = (vectors: number[][], count: number) => {
      expect(vectors).toHaveLength(count);
      for (const v of vectors) {
        expect(v).toHaveLength(embedder.dimension);
        expect(v.every(Number.isFinite)).toBe(true);
        expect(length(v)).toBeCloseTo(1, 4);
      }
    };

    it('names its model and reports a positive whole dimension', () => {
      expect(embedder.model).toMatch(/\S/);
      expect(Number.isInteger(embedder.dimension) && embedder.dimension > 0).toBe(true);
    });

    it('returns one unit-length vector of the reported dimension per text, in order', async () => {
      const texts = ['I prefer tea over coffee', 'My flight to Lisbon leaves on Monday', 'Allergic to peanuts'];
      const vectors = await embedder.embed(texts);
      expectUnitVectors(vectors, 3);
      expect(cosine(vectors[0], vectors[1])).toBeLessThan(0.999);
    });

    it('returns no vectors for no texts', async () => {
      expect(await embedder.embed([])).toEqual([]);
    });

    it('is deterministic: the same text always gives the same vector', async () => {
      const text = 'My sister Julia lives in Porto and works as an architect';
      const [first] = await embedder.embed([text]);
      const [second] = await embedder.embed([text]);
      const [fromOtherInstance] = await (await factory()).embed([text]);
      for (const other of [second, fromOtherInstance]) {
        other.forEach((x, i) => expect(x).toBeCloseTo(first[i], 6));
      }
    });

    it('embeds a text in a batch exactly as it embeds it alone', async () => {
      const texts = Array.from({ length: 40 }, (_, i) => `Reminder ${i}: water the plants and call grandma about dinner number ${i}`);
      const batch = await embedder.embed(texts);
      const singles = await Promise.all(texts.map(async (t) => (await embedder.embed([t]))[0]));
      batch.forEach((vector, i) => vector.forEach((x, d) => expect(x).toBeCloseTo(singles[i][d], 6)));
    });

    it('embeds empty, blank, very long, unicode and symbol-only texts without failing', async () => {
      const texts = [
        '',
        '   \n\t ',
        'long memory about the garden '.repeat(4_000),
        'Ich wohne in München und trinke gern Kaffee ☕',
        '我喜欢在周末去公园跑步',
        'Zoë’s café — naïve résumé',
        '🚗🚗🚗 !!! ???',
      ];
      expectUnitVectors(await embedder.embed(texts), texts.length);
    });

    it('places texts about the same thing closer than unrelated texts', async () => {
      const [anchor, related, unrelated] = await embedder.embed([
        'My favourite food is pizza with mushrooms',
        'I love eating pizza, especially with mushrooms on top',
        'The quarterly tax report is due to the accountant next week',
      ]);
      expect(cosine(anchor, related)).toBeGreaterThan(cosine(anchor, unrelated) + 0.1);
    });
  });
}
