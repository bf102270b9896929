/**
 * English function words. The upstream vectors were trained on news, where "i", "my" or "please" are
 * far rarer than in what people tell an assistant, and single letters ("i", "a") are missing. These
 * words are weighted as if they were among the most frequent words, so SIF all but ignores them.
 */
export const FUNCTION_WORDS: ReadonlySet<string> = new Set(
  `a about above after again against all also am an and any are as at be because been before being below
  between both but by can cannot could did do does doing done down during each either else ever every few for
  from further get gets got had has have having he her here hers herself him himself his how i if in into is
  it its itself just let lets may me might mine more most much must my myself neither no nor not now of off
  often on once only or other ought our ours ourselves out over own please quite rather really same shall she
  should so some still such than that the their theirs them themselves then there these they this those
  through thus to too under until up upon us very was we were what whatever when whenever where whereas
  wherever whether which while who whoever whom whose why will with within without would yes yet you your
  yours yourself yourselves`.split(/\s+/),
);
