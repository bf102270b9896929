import { z } from 'zod';
import { SCIM_MAX_PAGE } from '../../services/scim/scim-service.ts';

const boolish = z.union([z.boolean(), z.enum(['true', 'false', 'True', 'False', 'TRUE', 'FALSE'])]);
const multiValued = z.looseObject({ value: z.string().max(1024), type: z.string().max(64).optional(), primary: z.boolean().optional(), display: z.string().max(256).optional() });

/** A SCIM User (RFC 7643 §4.1) as clients send it; unknown attributes and extensions are kept. */
export const scimUserResource = z.looseObject({
  schemas: z.array(z.string()).optional(),
  userName: z.string().trim().min(1).max(256),
  externalId: z.string().min(1).max(256).optional(),
  name: z.looseObject({ formatted: z.string().max(512).optional(), familyName: z.string().max(256).optional(), givenName: z.string().max(256).optional() }).optional(),
  displayName: z.string().max(256).optional(),
  emails: z.array(multiValued).max(20).optional(),
  active: boolish.optional(),
}).refine((r) => JSON.stringify(r).length <= 32_768, 'resource must serialise to at most 32 KiB');

/** A SCIM Group (RFC 7643 §4.2); members name Users by id. */
export const scimGroupResource = z.looseObject({
  schemas: z.array(z.string()).optional(),
  displayName: z.string().trim().min(1).max(256),
  externalId: z.string().min(1).max(256).optional(),
  // members may also carry `$ref`; it is kept as an unknown key, since a `$ref` property trips OpenAPI tooling
  members: z.array(z.looseObject({ value: z.string().max(128), display: z.string().max(256).optional() })).max(10_000).optional(),
});

export const scimPatchBody = z.object({
  schemas: z.array(z.string()).refine((s) => s.includes('urn:ietf:params:scim:api:messages:2.0:PatchOp'), 'schemas must contain urn:ietf:params:scim:api:messages:2.0:PatchOp'),
  Operations: z.array(z.object({ op: z.string().regex(/^(add|remove|replace)$/i, 'op must be add, remove or replace'), path: z.string().max(512).optional(), value: z.unknown().optional() })).min(1).max(1000),
});

export const scimListQuery = z.object({
  filter: z.string().max(2048).optional(),
  startIndex: z.coerce.number().int().default(1),
  count: z.coerce.number().int().min(0).default(100).transform((n) => Math.min(n, SCIM_MAX_PAGE)),
  attributes: z.string().max(1024).optional(),
  excludedAttributes: z.string().max(1024).optional(),
});
export const scimIdParam = z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) });
export const createScimTokenBody = z.object({ name: z.string().trim().min(1).max(128) });
export const scimTokenIdParam = z.object({ id: z.coerce.number().int().positive().max(2_147_483_647) });
