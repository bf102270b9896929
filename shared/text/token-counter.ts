import type { Tiktoken } from 'js-tiktoken/lite';

/**
 * Counts tokens with OpenAI's cl100k_base BPE (js-tiktoken: pure JavaScript, the ranks ship inside the
 * package, nothing is downloaded). Building the encoder takes a couple of seconds, so it is loaded on
 * first use and kept for the life of the process rather than at every cold start.
 */
export interface TokenCounter {
  readonly encoding: string;
  count(text: string): number;
}

let loading: Promise<TokenCounter> | undefined;

export function cl100kTokenCounter(): Promise<TokenCounter> {
  loading ??= (async () => {
    const [{ Tiktoken: Encoder }, { default: ranks }] = await Promise.all([import('js-tiktoken/lite'), import('js-tiktoken/ranks/cl100k_base')]);
    const encoder: Tiktoken = new Encoder(ranks);
    return { encoding: 'cl100k_base', count: (text: string) => (text ? encoder.encode(text).length : 0) };
  })();
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}
