import { appendFileSync } from 'node:fs';

/** `full` runs the sizes of docs/reliability.md; `fast` is the subset inside `npm test`. */
export type Profile = 'full' | 'fast';

export interface ReportTable {
  /** section of docs/reliability.md: load, faults, fuzzing, tenancy, security, deletion */
  section: string;
  title: string;
  columns: string[];
  rows: Array<Array<string | number>>;
  notes?: string[];
}

/**
 * Appends a table to the report file the wrapper (scripts/reliability.ts --report) names in
 * RELIABILITY_REPORT_FILE; without it (plain test runs) nothing is written.
 */
export function recordTable(table: ReportTable): void {
  const file = process.env.RELIABILITY_REPORT_FILE;
  if (!file) return;
  appendFileSync(file, `${JSON.stringify(table)}\n`);
}

/** A finding a suite observed but does not fail on (listed as open in the report). */
export function recordFinding(section: string, finding: string): void {
  recordTable({ section: 'findings', title: section, columns: ['finding'], rows: [[finding]] });
}

export const percentile = (sorted: number[], p: number): number => {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
};
