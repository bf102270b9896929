import { describe, expect, it } from 'vitest';
import { measureParaphraseRecall } from '../../bench/embedder-recall.ts';
import { createLocalEmbedder, LOCAL_EMBEDDER_MODEL } from '../../shared/adapters/local-embedder/index.ts';
import { baseFormCandidates, tokenize } from '../../shared/adapters/local-embedder/tokenize.ts';
import { embedderContract } from '../contract/embedder.ts';

embedderContract('local embedder', () => createLocalEmbedder());

const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);

async function similarities(anchor: string, ...others: string[]): Promise<number[]> {
  const [a, ...rest] = await createLocalEmbedder().embed([anchor, ...others]);
  return rest.map((v) => cosine(a, v));
}

describe('local embedder', () => {
  it('names a versioned model and a 256-dimension output', () => {
    const embedder = createLocalEmbedder();
    expect(embedder.model).toBe(LOCAL_EMBEDDER_MODEL);
    expect(embedder.model).toMatch(/-v\d+$/);
    expect(embedder.dimension).toBe(256);
  });

  it('gives experimental tuning a model name of its own, so such vectors never mix with the default', () => {
    expect(createLocalEmbedder({ tuning: { sifA: 0.01 } }).model).not.toBe(LOCAL_EMBEDDER_MODEL);
  });

  it('recognises paraphrases that share no words', async () => {
    const [paraphrase, unrelated] = await similarities(
      'I bought a new car',
      'purchased an automobile',
      'the weather is rainy',
    );
    expect(paraphrase).toBeGreaterThan(unrelated + 0.2);
  });

  it('understands inflected forms missing from its vocabulary through their base form', async () => {
    // "turnpikes" and "airlifts" are not in the vocabulary; "turnpike" and "airlift" are.
    const [road, cake] = await similarities('the turnpikes', 'highway', 'chocolate cake');
    expect(road).toBeGreaterThan(cake + 0.3);
    const [evacuation, dessert] = await similarities('airlifts', 'helicopter evacuation', 'chocolate cake');
    expect(evacuation).toBeGreaterThan(dessert + 0.3);
  });

  it('matches unknown names and typos through their character n-grams', async () => {
    const [sameName, otherName] = await similarities(
      'Meeting with Xandrelopoulos about the budget',
      'Call Xandrelopoulos back',
      'Call Wilberforce back',
    );
    expect(sameName).toBeGreaterThan(otherName + 0.1);

    const [typo, unrelated] = await similarities('restuarant', 'restaurant', 'garden');
    expect(typo).toBeGreaterThan(unrelated + 0.2);
  });

  it('lets function words count for almost nothing', async () => {
    const [withFunctionWords, otherTopic] = await similarities(
      'guitar lessons',
      'I would have had my guitar lessons with them',
      'piano repairs',
    );
    expect(withFunctionWords).toBeGreaterThan(0.9);
    expect(otherTopic).toBeLessThan(withFunctionWords);
  });

  it('finds at least 60% of the benchmark memories in the top 5 for questions worded differently', async () => {
    const recall = await measureParaphraseRecall(createLocalEmbedder());
    expect(recall.questions).toBeGreaterThanOrEqual(100);
    expect(recall.memories).toBeGreaterThanOrEqual(150);
    expect(recall.recallAt5).toBeGreaterThanOrEqual(0.6);
  });
});

describe('local embedder tokenizer', () => {
  it('lowercases, keeps letters of any script and expands contractions', () => {
    expect(tokenize("I don't like Zoë's CAFÉ in Zürich, 東京 2024!")).toEqual([
      'i', 'do', 'not', 'like', 'zoë', 'café', 'in', 'zürich', '東京', '2024',
    ]);
  });

  it('proposes base forms for plurals, past tenses and gerunds', () => {
    expect(baseFormCandidates('puppies')).toContain('puppy');
    expect(baseFormCandidates('stopped')).toContain('stop');
    expect(baseFormCandidates('hoping')).toContain('hope');
    expect(baseFormCandidates('boxes')).toContain('box');
  });
});
