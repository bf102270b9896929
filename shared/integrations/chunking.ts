export interface ChunkOptions {
  /** target characters per chunk */
  size: number;
  /** characters repeated at the start of the next chunk, so a sentence cut at a boundary is found whole */
  overlap: number;
}

export const DEFAULT_CHUNKING: ChunkOptions = { size: 2000, overlap: 200 };

/**
 * Splits long text into chunks of about `size` characters, cutting at a paragraph, line or word
 * boundary near the end of each window; consecutive chunks share about `overlap` characters.
 */
export function chunkText(text: string, options: ChunkOptions = DEFAULT_CHUNKING): string[] {
  const clean = text.replace(/\r\n/g, '\n').trim();
  if (clean.length <= options.size) return clean ? [clean] : [];
  const chunks: string[] = [];
  let start = 0;
  while (start < clean.length) {
    let end = Math.min(start + options.size, clean.length);
    if (end < clean.length) {
      const window = clean.slice(start, end);
      const minCut = Math.floor(options.size * 0.6);
      const cut = [window.lastIndexOf('\n\n'), window.lastIndexOf('\n'), window.lastIndexOf('. '), window.lastIndexOf(' ')].find((i) => i >= minCut);
      if (cut !== undefined) end = start + cut + 1;
    }
    chunks.push(clean.slice(start, end).trim());
    if (end >= clean.length) break;
    // Start the next chunk `overlap` back, at a word boundary.
    let next = Math.max(end - options.overlap, start + 1);
    const space = clean.indexOf(' ', next);
    if (space !== -1 && space < end) next = space + 1;
    start = next;
  }
  return chunks.filter(Boolean);
}
