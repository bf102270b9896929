import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';
import { addMember, bearer, countRows, signupOwner, type Account } from '../support/accounts.ts';
import { newTestIdp, readAuthnRequest, samlResponse, type AssertionOptions, type TestIdp } from '../support/saml-idp.ts';

interface SamlProvider { id: string; login_url: string; acs_url: string; sp_entity_id: string; metadata_url: string; idp_entity_id: string; idp_certificate_fingerprints: string[] }

describe('SAML 2.0 login with a locally signed IdP (node-saml + xml-crypto)', () => {
  let server: TestServer;
  let owner: Account;
  let idp: TestIdp;
  let provider: SamlProvider;
  // a second organization with its own IdP and provider
  let otherOwner: Account;
  let otherIdp: TestIdp;
  let otherProvider: SamlProvider;

  const register = async (account: Account, issuer: TestIdp, extra: Record<string, unknown> = {}) => {
    const res = await server.call('POST', '/org/sso/saml/providers', { headers: bearer(account.token), body: { name: 'Test IdP', idp_entity_id: issuer.entityId, sso_url: `${issuer.entityId}/sso`, idp_certificate: issuer.cert, ...extra } });
    expect(res.status).toBe(201);
    return res.body as SamlProvider;
  };

  /** Starts a login like a browser: the AuthnRequest id and the cookie that binds it. */
  async function start(p: SamlProvider) {
    const res = await fetch(`${server.url}${p.login_url}`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const location = res.headers.get('location')!;
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('ms_saml_request='))!.split(';')[0];
    return { location, cookie, request: readAuthnRequest(location) };
  }

  /** The IdP's HTTP-POST to our ACS. */
  const post = async (p: SamlProvider, SAMLResponse: string, cookie?: string) => {
    const res = await fetch(`${server.url}/sso/saml/${p.id}/acs`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
      body: new URLSearchParams({ SAMLResponse, RelayState: '' }).toString(),
    });
    return { status: res.status, body: (await res.json()) as any, headers: res.headers };
  };

  const assertion = (p: SamlProvider, requestId: string, o: Partial<AssertionOptions> = {}): AssertionOptions => ({
    inResponseTo: requestId, acs: p.acs_url, audience: p.sp_entity_id, nameId: 'saml-subject-1', email: 'carol.saml@example.com', displayName: 'Carol Saml', ...o,
  });

  beforeAll(async () => {
    server = await startTestServer();
    owner = await signupOwner(server);
    idp = await newTestIdp();
    provider = await register(owner, idp);
    otherOwner = await signupOwner(server, 'other');
    otherIdp = await newTestIdp();
    otherProvider = await register(otherOwner, otherIdp);
  });
  afterAll(() => server?.stop());

  it('registers a provider with default SP entity id and ACS on this API, and serves SP metadata', async () => {
    expect(provider).toMatchObject({
      kind: 'saml', idp_entity_id: idp.entityId, acs_url: `${server.url}/sso/saml/${provider.id}/acs`, sp_entity_id: `${server.url}/sso/saml/${provider.id}/metadata`,
      login_url: `/sso/saml/${provider.id}/login`, default_role: 'member',
    });
    expect(provider.idp_certificate_fingerprints).toHaveLength(1);
    const listed = await server.call('GET', '/org/sso/providers', { headers: bearer(owner.token) });
    expect(listed.body.map((p: any) => p.id)).toEqual([provider.id]);
    const meta = await fetch(`${server.url}${provider.metadata_url}`);
    expect(meta.headers.get('content-type')).toContain('application/samlmetadata+xml');
    const xml = await meta.text();
    expect(xml).toContain(`entityID="${provider.sp_entity_id}"`);
    expect(xml).toContain(`Location="${provider.acs_url}"`);
    expect(xml).toContain('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
  });

  it('refuses a certificate that does not parse, an http SSO URL, and callers below admin', async () => {
    const before = await countRows(server, 'sso_providers');
    const bad = await server.call('POST', '/org/sso/saml/providers', { headers: bearer(owner.token), body: { name: 'x', idp_entity_id: 'e', sso_url: 'https://idp.example/sso', idp_certificate: 'A'.repeat(200) } });
    expect(bad.status).toBe(422);
    const http = await server.call('POST', '/org/sso/saml/providers', { headers: bearer(owner.token), body: { name: 'x', idp_entity_id: 'e', sso_url: 'http://idp.example/sso', idp_certificate: idp.cert } });
    expect(http.status).toBe(422);
    const member = await addMember(server, owner.tenantId, 'member');
    const forbidden = await server.call('POST', '/org/sso/saml/providers', { headers: bearer(member.token), body: { name: 'x', idp_entity_id: 'e', sso_url: 'https://idp.example/sso', idp_certificate: idp.cert } });
    expect(forbidden.status).toBe(403);
    expect(await countRows(server, 'sso_providers')).toBe(before);
  });

  it('sends an AuthnRequest to the IdP naming our entity id and ACS, bound to the browser', async () => {
    const { location, cookie, request } = await start(provider);
    expect(location.startsWith(`${idp.entityId}/sso?`)).toBe(true);
    expect(request.issuer).toBe(provider.sp_entity_id);
    expect(request.acs).toBe(provider.acs_url);
    expect(cookie).toBe(`ms_saml_request=${request.id}`);
    const row = await server.app.db.kysely.selectFrom('saml_requests').selectAll().where('id', '=', request.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ provider_id: provider.id, tenant_id: owner.tenantId, used_at: null });
  });

  it('logs a person in with a signed assertion: account provisioned in the owning tenant, session usable, audited', async () => {
    const users = await countRows(server, 'users');
    const { cookie, request } = await start(provider);
    const res = await post(provider, samlResponse(idp, assertion(provider, request.id)), cookie);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ user: { email: 'carol.saml@example.com', full_name: 'Carol Saml', role: 'member', tenant_id: owner.tenantId }, tokens: { token_type: 'bearer' } });
    expect(res.headers.getSetCookie().join()).toContain('ms_saml_request=;');
    expect(await countRows(server, 'users')).toBe(users + 1);
    const me = await server.call('GET', '/auth/me', { headers: bearer(res.body.tokens.access_token) });
    expect(me.body).toMatchObject({ email: 'carol.saml@example.com', tenant_id: owner.tenantId });

    // a response signed as a whole (assertion unsigned) is accepted too, and finds the same account by its link
    const second = await start(provider);
    const again = await post(provider, samlResponse(idp, { ...assertion(provider, second.request.id), sign: 'response' }), second.cookie);
    expect(again.status).toBe(200);
    expect(again.body.user.id).toBe(res.body.user.id);
    expect(await countRows(server, 'users')).toBe(users + 1);
    const audit = await server.app.db.kysely.selectFrom('audit_logs').select(['event_type', 'payload_json']).where('tenant_id', '=', owner.tenantId).where('event_type', '=', 'auth.sso_login').execute();
    expect(audit).toHaveLength(2);
  });

  it('refuses a replayed response: each request id answers once', async () => {
    const { cookie, request } = await start(provider);
    const signed = samlResponse(idp, assertion(provider, request.id));
    expect((await post(provider, signed, cookie)).status).toBe(200);
    const replay = await post(provider, signed, cookie);
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe('SSO_REQUEST_UNKNOWN');
    // the same signed assertion re-wrapped to answer a fresh request: the signed InResponseTo no longer matches
    const fresh = await start(provider);
    const rewrapped = Buffer.from(Buffer.from(signed, 'base64').toString('utf8').replace(`InResponseTo="${request.id}" `, `InResponseTo="${fresh.request.id}" `).replace(/(<samlp:Response[^>]*InResponseTo=")[^"]+/, `$1${fresh.request.id}`)).toString('base64');
    const refused = await post(provider, rewrapped, fresh.cookie);
    expect(refused.status).toBe(401);
    // and a response to a request this server never issued
    const never = await post(provider, samlResponse(idp, assertion(provider, '_never-issued')), 'ms_saml_request=_never-issued');
    expect(never.status).toBe(401);
    expect(never.body.error.code).toBe('SSO_REQUEST_UNKNOWN');
  });

  it('refuses a tampered assertion, an unsigned one, and one signed by another key', async () => {
    const users = await countRows(server, 'users');
    const a = await start(provider);
    const xml = Buffer.from(samlResponse(idp, assertion(provider, a.request.id, { email: 'mallory@example.com', nameId: 'mallory' })), 'base64').toString('utf8');
    const tampered = xml.replace('mallory@example.com', owner.email).replace('>mallory<', '>owner-subject<');
    expect(tampered).not.toBe(xml);
    const res = await post(provider, Buffer.from(tampered).toString('base64'), a.cookie);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('SSO_SIGNATURE_INVALID');

    const b = await start(provider);
    const unsigned = await post(provider, samlResponse(idp, { ...assertion(provider, b.request.id), sign: 'none' }), b.cookie);
    expect(unsigned.status).toBe(401);
    expect(unsigned.body.error.code).toBe('SSO_SIGNATURE_INVALID');

    const c = await start(provider);
    const foreign = await post(provider, samlResponse(otherIdp, { ...assertion(provider, c.request.id), issuer: idp.entityId }), c.cookie);
    expect(foreign.status).toBe(401);
    expect(foreign.body.error.code).toBe('SSO_SIGNATURE_INVALID');

    // a signature over the assertion does not cover a second, unsigned assertion smuggled next to it
    const d = await start(provider);
    const signedXml = Buffer.from(samlResponse(idp, assertion(provider, d.request.id)), 'base64').toString('utf8');
    const evil = Buffer.from(samlResponse(idp, { ...assertion(provider, d.request.id, { email: 'evil@example.com', nameId: 'evil' }), sign: 'none' }), 'base64').toString('utf8');
    const evilAssertion = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(evil)![0];
    const wrapped = signedXml.replace('<saml:Assertion', `${evilAssertion}<saml:Assertion`);
    const wrap = await post(provider, Buffer.from(wrapped).toString('base64'), d.cookie);
    expect(wrap.status).toBe(401);
    expect(await countRows(server, 'users')).toBe(users);
  });

  it('refuses a wrong audience, an expired assertion, another recipient and another issuer', async () => {
    const cases: Array<[Partial<AssertionOptions>, string]> = [
      [{ audience: 'https://some-other-sp.example/metadata' }, 'SSO_AUDIENCE_MISMATCH'],
      [{ notOnOrAfterMinutes: -10 }, 'SSO_ASSERTION_EXPIRED'],
      [{ recipient: 'https://attacker.example/acs' }, 'SSO_RECIPIENT_MISMATCH'],
      [{ subjectInResponseTo: '_another-request' }, 'SSO_REQUEST_UNKNOWN'],
    ];
    for (const [change, code] of cases) {
      const { cookie, request } = await start(provider);
      const res = await post(provider, samlResponse(idp, assertion(provider, request.id, change)), cookie);
      expect(res.status, JSON.stringify(change)).toBe(401);
      expect(res.body.error.code, JSON.stringify(change)).toBe(code);
    }
    // within the allowed clock skew (60 s) an assertion that just expired still counts as on time
    const { cookie, request } = await start(provider);
    const late = await post(provider, samlResponse(idp, assertion(provider, request.id, { notOnOrAfterMinutes: -0.25, nameId: 'skewed', email: 'skewed@example.com' })), cookie);
    expect(late.status).toBe(200);
    // the IdP's certificate signing an assertion that names another issuer
    const e = await start(provider);
    const issuer = await post(provider, samlResponse(idp, assertion(provider, e.request.id, { issuer: 'https://other-idp.example' })), e.cookie);
    expect(issuer.status).toBe(401);
    expect(issuer.body.error.code).toBe('SSO_ISSUER_MISMATCH');
  });

  it('refuses a response not started by this browser', async () => {
    const { request } = await start(provider);
    const res = await post(provider, samlResponse(idp, assertion(provider, request.id)));
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('SSO_STATE_INVALID');
  });

  it("keeps organizations apart: another tenant's provider id, IdP and admin get nothing of this one", async () => {
    const users = await countRows(server, 'users');
    // a response to our request, posted to the other organization's ACS
    const ours = await start(provider);
    const cross = await post(otherProvider, samlResponse(idp, assertion(otherProvider, ours.request.id)), ours.cookie);
    expect(cross.status).toBe(401);
    // the other organization's IdP answering its own request but aimed at our ACS
    const theirs = await start(otherProvider);
    const aimed = await post(provider, samlResponse(otherIdp, assertion(provider, theirs.request.id)), theirs.cookie);
    expect(aimed.status).toBe(401);
    expect(await countRows(server, 'users')).toBe(users);
    // the other organization's own login works and lands in its own tenant
    const own = await start(otherProvider);
    const ok = await post(otherProvider, samlResponse(otherIdp, assertion(otherProvider, own.request.id, { email: 'dave.saml@example.com', nameId: 'dave' })), own.cookie);
    expect(ok.status).toBe(200);
    expect(ok.body.user.tenant_id).toBe(otherOwner.tenantId);
    // its admin can neither list nor delete our provider
    const list = await server.call('GET', '/org/sso/providers', { headers: bearer(otherOwner.token) });
    expect(list.body.map((p: any) => p.id)).toEqual([otherProvider.id]);
    const del = await server.call('DELETE', `/org/sso/providers/${provider.id}`, { headers: bearer(otherOwner.token) });
    expect(del.status).toBe(404);
    // an OIDC login URL does not accept a SAML provider id
    const oidc = await server.call('GET', `/sso/oidc/${provider.id}/login`);
    expect(oidc.status).toBe(404);
  });

  it('answers bad ACS input with the error envelope and an unknown provider with 404', async () => {
    const empty = await fetch(`${server.url}/sso/saml/${provider.id}/acs`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    expect(empty.status).toBe(422);
    const garbage = await post(provider, Buffer.from('<not-saml/>').toString('base64'), 'ms_saml_request=x');
    expect(garbage.status).toBe(401);
    const unknown = await server.call('GET', '/sso/saml/sso_0000000000000000/login');
    expect(unknown.status).toBe(404);
  });

  it('deleting the provider removes its pending requests; its login stops', async () => {
    const p = await register(owner, idp);
    const { request } = await start(p);
    const del = await server.call('DELETE', `/org/sso/providers/${p.id}`, { headers: bearer(owner.token) });
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ kind: 'saml', deleted: true });
    expect(await server.app.db.kysely.selectFrom('saml_requests').select('id').where('id', '=', request.id).execute()).toEqual([]);
    expect((await server.call('GET', p.login_url)).status).toBe(404);
  });
});
