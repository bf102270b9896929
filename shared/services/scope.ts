/** Who is calling, resolved from the credential only. Never built from a request body. */
export type Role = 'owner' | 'admin' | 'member' | 'viewer';

export interface Principal {
  kind: 'api_key' | 'session' | 'oauth' | 'scim';
  tenantId: string;
  /** users.id of the signed-in account (sessions) or the key's creator */
  accountId: number | null;
  accountPublicId: string | null;
  apiKeyId: number | null;
  role: Role;
  /** api-key scopes; sessions have every scope their role grants */
  scopes: readonly string[];
  /** a project-locked key implies its project */
  projectLock: string | null;
  environment: string;
  rateLimitTier: string;
  /** the platform operator flag (admin routes) */
  platformAdmin: boolean;
}

/** The resolved scope every repository function takes. */
export interface Scope {
  tenantId: string;
  projectId: string | null;
  principal: Principal;
}

/** A scope narrowed to one end user (memory routes). */
export interface EndUserScope extends Scope {
  /** users.id of the memory owner */
  userId: number;
  /** the caller-facing end-user id (X-End-User-ID, or the account's public id) */
  endUserExternalId: string;
  environment: string;
}

export const SCOPES = ['memories:read', 'memories:write', 'projects:read', 'projects:write', 'keys:manage', 'webhooks:manage', 'audit:read'] as const;
export const DEFAULT_KEY_SCOPES = ['memories:read', 'memories:write', 'projects:read'] as const;
