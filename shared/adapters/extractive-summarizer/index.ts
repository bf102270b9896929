export { createExtractiveSummarizer, type ExtractiveSummarizerOptions } from './extractive-summarizer.ts';
