import { randomBytes, X509Certificate } from 'node:crypto';
import { SAML, ValidateInResponseTo, type CacheProvider, type Profile } from '@node-saml/node-saml';
import type { Kysely, Selectable } from 'kysely';
import type { Database, SsoProvidersTable } from '../db/schema.ts';
import { AppError, unauthorized } from '../errors.ts';
import type { Clock } from '../ports/clock.ts';
import { writeAudit } from './audit.ts';
import { auditBase, principalLabel, type AuditMeta, type AuthResult, type IdentityService } from './identity-service.ts';
import { linkOrProvision, loginProviderOrThrow, toProviderResponse } from './oidc-service.ts';
import type { Role, Scope } from './scope.ts';

/** How long an AuthnRequest id waits for its response. */
export const SAML_REQUEST_TTL_SECONDS = 600;

type ProviderRow = Selectable<SsoProvidersTable>;

export interface SamlDeps {
  db: Kysely<Database>;
  clock: Clock;
  identity: IdentityService;
  /** the most the IdP's clock may differ from ours when NotBefore / NotOnOrAfter are checked */
  clockSkewSeconds: number;
}

export interface CreateSamlProviderInput {
  name: string;
  idp_entity_id: string;
  sso_url: string;
  /** one or more PEM certificates (or bare base64 DER, as IdP metadata carries them) */
  idp_certificate: string;
  /** `{provider_id}` is replaced by the new id */
  sp_entity_id: string;
  acs_url: string;
  default_role: Exclude<Role, 'owner'>;
}

const NAMEID_TRANSIENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';
const EMAIL_ATTRIBUTES = ['email', 'mail', 'emailaddress', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress', 'urn:oid:0.9.2342.19200300.100.1.3'];
const NAME_ATTRIBUTES = ['displayName', 'name', 'cn', 'http://schemas.microsoft.com/identity/claims/displayname', 'urn:oid:2.16.840.1.113730.3.1.241'];
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Normalises what an admin pastes (PEM blocks, or base64 DER from IdP metadata) into PEM certificates node:crypto can parse. */
export function normaliseCertificates(input: string): string {
  const blocks = input.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [input.replace(/\s+/g, '')];
  const pems = blocks.map((block) => {
    const b64 = block.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new AppError('VALIDATION_ERROR', 422, 'idp_certificate must be a PEM or base64 X.509 certificate', [{ field: 'idp_certificate', message: 'not a certificate' }]);
    const pem = `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----`;
    try {
      new X509Certificate(pem);
    } catch {
      throw new AppError('VALIDATION_ERROR', 422, 'idp_certificate is not a parseable X.509 certificate', [{ field: 'idp_certificate', message: 'not a certificate' }]);
    }
    return pem;
  });
  return pems.join('\n');
}

/**
 * node-saml's request-id cache, kept in PostgreSQL per provider so that a response can only answer a
 * request this provider's login started, within the request's lifetime. node-saml's own removal is
 * ignored: the service spends the id atomically after validation (`consume`), so two concurrent
 * deliveries of one response cannot both log in.
 */
class RequestIdStore implements CacheProvider {
  constructor(private readonly db: Kysely<Database>, private readonly provider: ProviderRow, private readonly clock: Clock) {}

  async saveAsync(key: string, value: string) {
    const now = this.clock.now();
    await this.db.insertInto('saml_requests').values({
      id: key, provider_id: this.provider.id, tenant_id: this.provider.tenant_id, created_at: now, expires_at: new Date(now.getTime() + SAML_REQUEST_TTL_SECONDS * 1000),
    }).execute();
    return { value, createdAt: now.getTime() };
  }

  async getAsync(key: string) {
    const row = await this.db.selectFrom('saml_requests').select('created_at').where('id', '=', key).where('provider_id', '=', this.provider.id)
      .where('used_at', 'is', null).where('expires_at', '>', this.clock.now()).executeTakeFirst();
    return row ? new Date(row.created_at).toISOString() : null;
  }

  async removeAsync(key: string | null) {
    return key;
  }
}

/** Reads the first value of an attribute by any of its usual names. */
function attribute(profile: Profile, names: string[]): string | undefined {
  const attrs = { ...(profile.attributes as Record<string, unknown> | undefined), ...(profile as unknown as Record<string, unknown>) };
  for (const name of names) {
    const key = Object.keys(attrs).find((k) => k.toLowerCase() === name.toLowerCase());
    const value = key === undefined ? undefined : attrs[key];
    const first = Array.isArray(value) ? value[0] : value;
    if (typeof first === 'string' && first.trim()) return first.trim();
  }
  return undefined;
}

/** The SubjectConfirmationData elements of the signed assertion (node-saml's xml2js form). */
function confirmations(profile: Profile): Array<{ Method?: string; Recipient?: string; InResponseTo?: string }> {
  const assertion = (profile.getAssertion?.() as { Assertion?: any } | undefined)?.Assertion;
  const out: Array<{ Method?: string; Recipient?: string; InResponseTo?: string }> = [];
  for (const sc of assertion?.Subject?.[0]?.SubjectConfirmation ?? []) {
    for (const data of sc.SubjectConfirmationData ?? []) out.push({ Method: sc.$?.Method, Recipient: data.$?.Recipient, InResponseTo: data.$?.InResponseTo });
  }
  return out;
}

/** Sorts node-saml's refusals into stable error codes (its messages are kept as the detail). */
function refusal(err: unknown): AppError {
  const message = err instanceof Error ? err.message : String(err);
  const code = /signature/i.test(message) ? 'SSO_SIGNATURE_INVALID'
    : /InResponseTo/i.test(message) ? 'SSO_REQUEST_UNKNOWN'
    : /expired|not yet valid|too old|subject confirmation/i.test(message) ? 'SSO_ASSERTION_EXPIRED'
    : /audience/i.test(message) ? 'SSO_AUDIENCE_MISMATCH'
    : /provider returned/i.test(message) ? 'SSO_DENIED'
    : 'SSO_ASSERTION_INVALID';
  return unauthorized(`The SAML response was refused: ${message.slice(0, 300)}`, code);
}

/**
 * SAML 2.0 Web Browser SSO as a service provider, with `@node-saml/node-saml`: SP-initiated login
 * (HTTP-Redirect AuthnRequest), the HTTP-POST ACS, and SP metadata. A response must be signed (the
 * response or its assertion) by the configured IdP certificate, name our entity id as audience and our
 * ACS as recipient, be within its validity window (± the configured skew), and answer an AuthnRequest
 * this provider issued and that no earlier response spent. The account outcome is OIDC's.
 */
export class SamlService {
  constructor(private readonly deps: SamlDeps) {}

  // ---------- provider configs (tenant admins)

  async createProvider(scope: Scope, input: CreateSamlProviderInput, meta: AuditMeta) {
    const certificate = normaliseCertificates(input.idp_certificate);
    const id = `sso_${randomBytes(8).toString('hex')}`;
    return this.deps.db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('sso_providers')
        .values({
          id, tenant_id: scope.tenantId, kind: 'saml', name: input.name, issuer: input.idp_entity_id, client_id: input.sp_entity_id.replace('{provider_id}', id),
          client_secret_ciphertext: null, scopes: '', redirect_uri: input.acs_url.replace('{provider_id}', id), default_role: input.default_role,
          sso_url: input.sso_url, idp_certificate: certificate, created_by: scope.principal.accountId,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await writeAudit(trx, { ...auditBase(meta), tenantId: scope.tenantId, userId: scope.principal.accountId, principal: principalLabel(scope.principal), eventType: 'sso_provider.created', category: 'security', resourceType: 'sso_provider', resourceId: id, action: 'create', status: 'success', statusCode: 201, payload: { kind: 'saml', idp_entity_id: input.idp_entity_id } });
      meta.audit.written = true;
      return toProviderResponse(row);
    });
  }

  // ---------- login

  /** The IdP's SSO URL carrying a fresh AuthnRequest (HTTP-Redirect binding); its id is returned so the caller can bind it to the browser. */
  async beginLogin(providerId: string): Promise<{ redirectUrl: string; requestId: string }> {
    const provider = await loginProviderOrThrow(this.deps.db, providerId, 'saml');
    const store = new RequestIdStore(this.deps.db, provider, this.deps.clock);
    let requestId = '';
    const saml = this.saml(provider, {
      saveAsync: async (key, value) => {
        requestId = key;
        return store.saveAsync(key, value);
      },
      getAsync: (key) => store.getAsync(key),
      removeAsync: (key) => store.removeAsync(key),
    });
    const redirectUrl = await saml.getAuthorizeUrlAsync('', undefined, {});
    return { redirectUrl, requestId };
  }

  /**
   * The ACS: validates the POSTed `SAMLResponse` (node-saml: signature, issuer certificate, audience,
   * timestamps with bounded skew, InResponseTo against the stored request ids), then checks what
   * node-saml leaves to the SP (issuer, Recipient, Destination, the signed InResponseTo), spends the
   * request id and signs the account in.
   */
  async completeLogin(providerId: string, input: { SAMLResponse: string; RelayState?: string }, boundRequestId: string | undefined, meta: AuditMeta): Promise<AuthResult> {
    const provider = await loginProviderOrThrow(this.deps.db, providerId, 'saml');
    const saml = this.saml(provider, new RequestIdStore(this.deps.db, provider, this.deps.clock));
    let profile: Profile | null;
    try {
      ({ profile } = await saml.validatePostResponseAsync({ SAMLResponse: input.SAMLResponse, ...(input.RelayState ? { RelayState: input.RelayState } : {}) }));
    } catch (err) {
      throw refusal(err);
    }
    if (!profile) throw unauthorized('The SAML response carries no assertion', 'SSO_ASSERTION_INVALID');
    const requestId = profile.inResponseTo as string | undefined;
    if (!requestId) throw unauthorized('The SAML response answers no request of ours', 'SSO_REQUEST_UNKNOWN');

    if (profile.issuer !== provider.issuer) throw unauthorized('The assertion was issued by another identity provider', 'SSO_ISSUER_MISMATCH');
    const bearer = confirmations(profile).filter((c) => c.Method === 'urn:oasis:names:tc:SAML:2.0:cm:bearer');
    if (!bearer.some((c) => c.Recipient === provider.redirect_uri)) throw unauthorized('The assertion is addressed to another recipient', 'SSO_RECIPIENT_MISMATCH');
    // The Response's InResponseTo may sit outside the signature; the signed SubjectConfirmationData must say the same.
    if (!bearer.some((c) => c.InResponseTo === requestId)) throw unauthorized('The signed assertion answers another request', 'SSO_REQUEST_UNKNOWN');
    const destination = /<(?:\w+:)?Response\b[^>]*\sDestination="([^"]*)"/.exec(profile.getSamlResponseXml?.() ?? '')?.[1];
    if (destination !== undefined && destination !== provider.redirect_uri) throw unauthorized('The response is addressed to another destination', 'SSO_RECIPIENT_MISMATCH');
    // Login CSRF: the browser that posts the response must be the one that started the request.
    if (boundRequestId !== requestId) throw unauthorized('The login was not started by this browser', 'SSO_STATE_INVALID');

    const nameFormat = profile.nameIDFormat;
    const emailAttr = attribute(profile, EMAIL_ATTRIBUTES) ?? (EMAIL.test(profile.nameID ?? '') ? profile.nameID : undefined);
    const email = emailAttr?.toLowerCase();
    const subject = nameFormat === NAMEID_TRANSIENT ? (email ? `email:${email}` : undefined) : profile.nameID;
    if (!subject) throw unauthorized('The assertion names no persistent subject and no email', 'SSO_ASSERTION_INVALID');
    const name = attribute(profile, NAME_ATTRIBUTES);

    return this.deps.db.transaction().execute(async (trx) => {
      // Spent once, atomically: a second delivery of the same response (or a parallel one) finds it used.
      const spent = await trx.updateTable('saml_requests').set({ used_at: this.deps.clock.now() })
        .where('id', '=', requestId).where('provider_id', '=', provider.id).where('used_at', 'is', null).returning('id').executeTakeFirst();
      if (!spent) throw unauthorized('This SAML response was already used', 'SSO_REQUEST_UNKNOWN');
      // The IdP is the tenant's own directory: its email is taken as verified, as an OIDC issuer's email_verified is.
      const userId = await linkOrProvision(trx, provider, subject, email && EMAIL.test(email) ? email : undefined, true, name);
      const result = await this.deps.identity.openVerifiedSession(trx, userId, provider.tenant_id, 'web');
      await writeAudit(trx, { ...auditBase(meta), tenantId: provider.tenant_id, userId, principal: result.user.id, eventType: 'auth.sso_login', category: 'auth', resourceType: 'session', resourceId: result.session.id, action: 'login', status: 'success', statusCode: 200, payload: { provider_id: provider.id, kind: 'saml' } });
      meta.audit.written = true;
      return result;
    });
  }

  /** SP metadata (entity id, ACS with the HTTP-POST binding, signed assertions wanted) to hand to the IdP. */
  async metadata(providerId: string): Promise<string> {
    const provider = await loginProviderOrThrow(this.deps.db, providerId, 'saml');
    return this.saml(provider, new RequestIdStore(this.deps.db, provider, this.deps.clock)).generateServiceProviderMetadata(null, null);
  }

  private saml(provider: ProviderRow, cacheProvider: CacheProvider): SAML {
    return new SAML({
      entryPoint: provider.sso_url ?? undefined,
      issuer: provider.client_id,
      audience: provider.client_id,
      callbackUrl: provider.redirect_uri,
      idpCert: (provider.idp_certificate ?? '').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [],
      idpIssuer: provider.issuer,
      // The response or the assertion must carry a valid signature (node-saml checks the assertion whenever the response is unsigned).
      wantAuthnResponseSigned: false,
      wantAssertionsSigned: false,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: SAML_REQUEST_TTL_SECONDS * 1000,
      acceptedClockSkewMs: this.deps.clockSkewSeconds * 1000,
      cacheProvider,
      identifierFormat: null,
      disableRequestedAuthnContext: true,
    });
  }
}
