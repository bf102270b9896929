/**
 * Turns several memory texts into one short summary. The offline adapter is extractive (it picks the
 * most central sentences); a model-backed adapter (e.g. Bedrock Converse) can replace it behind this port.
 */
export interface SummarizeOptions {
  /** upper bound on the sentences of the summary */
  maxSentences: number;
}

export interface Summarizer {
  summarize(texts: string[], opts: SummarizeOptions): Promise<string>;
}
