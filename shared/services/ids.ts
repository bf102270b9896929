import { randomBytes } from 'node:crypto';

export const newTenantId = (): string => `org_${randomBytes(8).toString('hex')}`;
export const newProjectId = (): string => `proj_${randomBytes(8).toString('hex')}`;
export const newUserPublicId = (): string => `usr_${randomBytes(8).toString('hex')}`;
export const newSessionId = (): string => `ses_${randomBytes(12).toString('hex')}`;

/** `m_<n>` on the v1 plane, integers on /memory/*; accepts either form (and digit strings). */
export function parseMemoryId(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^(?:m_)?(\d{1,15})$/.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return n > 0 ? n : undefined;
}

export const toV1MemoryId = (id: number): string => `m_${id}`;
