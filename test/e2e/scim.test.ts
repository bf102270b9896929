import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHeaders, startTestServer, type TestServer } from '../support/server.ts';
import { addMember, bearer, countRows, signupOwner, type Account } from '../support/accounts.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** RFC 7644 §3.3, the creation example. */
const BJENSEN = { schemas: [USER], userName: 'bjensen', externalId: 'bjensen', name: { formatted: 'Ms. Barbara J Jensen III', familyName: 'Jensen', givenName: 'Barbara' } };

describe('SCIM 2.0 over HTTP', () => {
  let server: TestServer;
  let owner: Account;
  let token: string;
  const scim = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    server.call(method, `/scim/v2${path}`, { headers: { Authorization: `Bearer ${token}`, 'content-type': 'application/scim+json', ...headers }, body });
  const create = async (resource: Record<string, unknown>) => {
    const res = await scim('POST', '/Users', { schemas: [USER], ...resource });
    expect(res.status).toBe(201);
    return res.body;
  };

  beforeAll(async () => {
    server = await startTestServer();
    owner = await signupOwner(server);
    const created = await server.call('POST', '/org/scim/tokens', { headers: bearer(owner.token), body: { name: 'Okta' } });
    expect(created.status).toBe(201);
    token = created.body.token;
  });
  afterAll(() => server.stop());

  it('stores provisioning tokens hashed and shows them once', async () => {
    expect(token).toMatch(/^scim_/);
    const list = await server.call('GET', '/org/scim/tokens', { headers: bearer(owner.token) });
    expect(list.body[0]).toMatchObject({ name: 'Okta', token_prefix: token.slice(0, 12), revoked_at: null });
    expect(JSON.stringify(list.body)).not.toContain(token);
  });

  it('creates the RFC 7644 §3.3 example user: 201, scim+json, Location and ETag, mapped onto an account', async () => {
    const res = await scim('POST', '/Users', BJENSEN);
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/scim+json');
    expect(res.body).toMatchObject({ schemas: [USER], userName: 'bjensen', externalId: 'bjensen', active: true, name: BJENSEN.name, meta: { resourceType: 'User' } });
    expect(res.body.id).toMatch(/^usr_/);
    expect(res.headers.get('location')).toBe(res.body.meta.location);
    expect(res.body.meta.location).toMatch(new RegExp(`/scim/v2/Users/${res.body.id}$`));
    expect(res.headers.get('etag')).toBe(res.body.meta.version);
    const row = await server.app.db.kysely.selectFrom('users').selectAll().where('public_id', '=', res.body.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ tenant_id: owner.tenantId, kind: 'account', external_id: `scim:${owner.tenantId}:bjensen`, full_name: 'Ms. Barbara J Jensen III', password_hash: null });
    const fetched = await scim('GET', `/Users/${res.body.id}`);
    expect(fetched.body).toEqual(res.body);
  });

  it('filters as in RFC 7644 §3.4.2 (userName eq, externalId eq, displayName eq, and) and lists the signed-up owner too', async () => {
    await create({ userName: 'jsmith', externalId: 'js-1', displayName: 'John Smith' });
    const q = async (filter: string) => (await scim('GET', `/Users?filter=${encodeURIComponent(filter)}`)).body;
    const byName = await q('userName eq "bjensen"');
    expect(byName.schemas).toEqual([LIST]);
    expect(byName.totalResults).toBe(1);
    expect(byName.Resources[0].userName).toBe('bjensen');
    expect((await q('userName eq "BJENSEN"')).totalResults).toBe(1); // userName is case-insensitive
    expect((await q('externalId eq "js-1"')).Resources.map((u: any) => u.userName)).toEqual(['jsmith']);
    expect((await q('externalId eq "JS-1"')).totalResults).toBe(0); // externalId is case-exact
    expect((await q('displayName eq "John Smith"')).Resources[0].externalId).toBe('js-1');
    expect((await q('userName sw "j" and displayName eq "John Smith"')).totalResults).toBe(1);
    expect((await q('userName eq "jsmith" and externalId eq "bjensen"')).totalResults).toBe(0);
    expect((await q('name.familyName co "ens" or userName eq "jsmith"')).totalResults).toBe(2);
    expect((await q(`userName eq "${owner.email}"`)).Resources[0]).toMatchObject({ active: true, emails: [{ value: owner.email, primary: true }] });
    const bad = await scim('GET', `/Users?filter=${encodeURIComponent('userName eq')}`);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ schemas: [ERROR], status: '400', scimType: 'invalidFilter' });
  });

  it('paginates with startIndex and count (RFC 7644 §3.4.2.4)', async () => {
    for (const n of [1, 2, 3]) await create({ userName: `page-${n}` });
    const all = (await scim('GET', '/Users?count=200')).body;
    const page = (await scim('GET', '/Users?startIndex=2&count=2')).body;
    expect(page).toMatchObject({ schemas: [LIST], totalResults: all.totalResults, itemsPerPage: 2, startIndex: 2 });
    expect(page.Resources.map((u: any) => u.id)).toEqual(all.Resources.slice(1, 3).map((u: any) => u.id));
    const countOnly = (await scim('GET', '/Users?count=0')).body;
    expect(countOnly).toMatchObject({ totalResults: all.totalResults, itemsPerPage: 0, Resources: [] });
    expect((await scim('GET', '/Users?startIndex=0&count=1')).body.startIndex).toBe(1);
  });

  it('patches users: add without path (§3.5.2.1), replace a filtered sub-attribute, remove, and Azure-style active "False"', async () => {
    const u = await create({ userName: 'patchme', emails: [{ value: 'patch@work.example', type: 'work', primary: true }] });
    const added = await scim('PATCH', `/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', value: { emails: [{ value: 'babs@jensen.org', type: 'home' }], nickName: 'Babs' } }] });
    expect(added.status).toBe(200);
    expect(added.body.emails).toEqual([{ value: 'patch@work.example', type: 'work', primary: true }, { value: 'babs@jensen.org', type: 'home' }]);
    expect(added.body.nickName).toBe('Babs');
    expect(added.body.meta.version).not.toBe(u.meta.version);
    const replaced = await scim('PATCH', `/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'emails[type eq "work"].value', value: 'new@work.example' }, { op: 'remove', path: 'nickName' }, { op: 'replace', path: 'name.givenName', value: 'Pat' }] });
    expect(replaced.body.emails[0].value).toBe('new@work.example');
    expect(replaced.body).not.toHaveProperty('nickName');
    expect(replaced.body.name.givenName).toBe('Pat');
    const row = await server.app.db.kysely.selectFrom('users').select('email').where('public_id', '=', u.id).executeTakeFirstOrThrow();
    expect(row.email).toBe('new@work.example');
    const off = await scim('PATCH', `/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
    expect(off.body.active).toBe(false);
    const on = await scim('PATCH', `/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: true } }] });
    expect(on.body.active).toBe(true);
    const noTarget = await scim('PATCH', `/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'emails[type eq "fax"].value', value: 'x' }] });
    expect(noTarget.status).toBe(400);
    expect(noTarget.body.scimType).toBe('noTarget');
    const noUserName = await scim('PATCH', `/Users/${u.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: 'userName' }] });
    expect(noUserName.status).toBe(400);
    expect((await scim('GET', `/Users/${u.id}`)).body.userName).toBe('patchme');
  });

  it('deactivating an account ends its sessions; the owner cannot be deactivated or deleted', async () => {
    const member = await addMember(server, owner.tenantId, 'member');
    expect((await server.call('GET', '/auth/me', { headers: bearer(member.token) })).status).toBe(200);
    const patched = await scim('PATCH', `/Users/${member.userId}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] });
    expect(patched.status).toBe(200);
    expect((await server.call('GET', '/auth/me', { headers: bearer(member.token) })).status).toBe(401);
    const ownerOff = await scim('PATCH', `/Users/${owner.userId}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] });
    expect(ownerOff.status).toBe(403);
    expect((await scim('DELETE', `/Users/${owner.userId}`)).status).toBe(403);
  });

  it('replaces a user with PUT and deletes it (204, then 404 in the SCIM error schema)', async () => {
    const u = await create({ userName: 'putme', displayName: 'Before' });
    const put = await scim('PUT', `/Users/${u.id}`, { schemas: [USER], userName: 'putme', displayName: 'After', externalId: 'ext-put' });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ displayName: 'After', externalId: 'ext-put', userName: 'putme' });
    const del = await scim('DELETE', `/Users/${u.id}`);
    expect(del.status).toBe(204);
    const gone = await scim('GET', `/Users/${u.id}`);
    expect(gone.status).toBe(404);
    expect(gone.headers.get('content-type')).toBe('application/scim+json');
    expect(gone.body).toMatchObject({ schemas: [ERROR], status: '404' });
  });

  it('manages groups with the RFC 7644 §3.5.2 member operations', async () => {
    const a = await create({ userName: 'member-a' });
    const b = await create({ userName: 'member-b' });
    const created = await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Tour Guides', externalId: 'tg' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ schemas: [GROUP], displayName: 'Tour Guides', externalId: 'tg', members: [], meta: { resourceType: 'Group' } });
    const gid = created.body.id;
    // §3.5.2.1: add a member
    const added = await scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ display: 'A', $ref: `https://example.com/v2/Users/${a.id}`, value: a.id }, { value: b.id }] }] });
    expect(added.body.members.map((m: any) => m.value).sort()).toEqual([a.id, b.id].sort());
    expect((await scim('GET', `/Users/${a.id}`)).body.groups).toEqual([expect.objectContaining({ value: gid, display: 'Tour Guides' })]);
    // §3.5.2.2: remove one member by value filter
    const removed = await scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: `members[value eq "${a.id}"]` }] });
    expect(removed.body.members.map((m: any) => m.value)).toEqual([b.id]);
    // §3.5.2.3: replace all members, and the displayName
    const replaced = await scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'members', value: [{ value: a.id }] }, { op: 'replace', path: 'displayName', value: 'Guides' }] });
    expect(replaced.body).toMatchObject({ displayName: 'Guides', members: [expect.objectContaining({ value: a.id })] });
    // remove all members
    expect((await scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: 'members' }] })).body.members).toEqual([]);
    expect((await scim('GET', `/Groups?filter=${encodeURIComponent('displayName eq "guides"')}`)).body.totalResults).toBe(1);
    const unknown = await scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: 'usr_0000000000000000' }] }] });
    expect(unknown.status).toBe(400);
    expect(unknown.body.scimType).toBe('invalidValue');
    const dup = await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'GUIDES' });
    expect(dup.status).toBe(409);
    expect(dup.body.scimType).toBe('uniqueness');
    expect((await scim('DELETE', `/Groups/${gid}`)).status).toBe(204);
    expect((await scim('GET', `/Groups/${gid}`)).status).toBe(404);
  });

  it('rejects a duplicate userName with 409 uniqueness and a resource without userName with 400, writing nothing', async () => {
    const users = await countRows(server, 'users');
    const dup = await scim('POST', '/Users', { ...BJENSEN, externalId: 'other' });
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ schemas: [ERROR], scimType: 'uniqueness', status: '409' });
    const missing = await scim('POST', '/Users', { schemas: [USER], name: { givenName: 'No' } });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ schemas: [ERROR], scimType: 'invalidValue' });
    const badPatch = await scim('PATCH', `/Users/${owner.userId}`, { schemas: ['wrong'], Operations: [] });
    expect(badPatch.status).toBe(400);
    expect(await countRows(server, 'users')).toBe(users);
  });

  it('accepts only provisioning tokens, scoped to their own tenant, and revoked tokens stop working', async () => {
    const none = await server.call('GET', '/scim/v2/Users');
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toBe('application/scim+json');
    expect(none.body).toMatchObject({ schemas: [ERROR], status: '401' });
    const { apiKey } = await server.newTenant();
    expect((await server.call('GET', '/scim/v2/Users', { headers: keyHeaders(apiKey) })).status).toBe(403);
    expect((await server.call('GET', '/scim/v2/Users', { headers: bearer(owner.token) })).status).toBe(403);
    expect((await server.call('POST', '/memory/query', { headers: bearer(token, { 'X-End-User-ID': 'u' }), body: { query: 'x' } })).status).toBe(403);

    const other = await signupOwner(server, 'other');
    const otherToken = (await server.call('POST', '/org/scim/tokens', { headers: bearer(other.token), body: { name: 'Azure' } })).body.token;
    const theirs = (await scim('GET', '/Users?count=200', undefined, { Authorization: `Bearer ${otherToken}` })).body;
    expect(theirs.Resources.map((u: any) => u.userName)).toEqual([other.email]);
    expect((await scim('GET', `/Users/${owner.userId}`, undefined, { Authorization: `Bearer ${otherToken}` })).status).toBe(404);

    const member = await addMember(server, owner.tenantId, 'member');
    expect((await server.call('POST', '/org/scim/tokens', { headers: bearer(member.token), body: { name: 'x' } })).status).toBe(403);
    const list = await server.call('GET', '/org/scim/tokens', { headers: bearer(other.token) });
    const revoke = await server.call('DELETE', `/org/scim/tokens/${list.body[0].id}`, { headers: bearer(other.token) });
    expect(revoke.status).toBe(200);
    expect((await scim('GET', '/Users', undefined, { Authorization: `Bearer ${otherToken}` })).status).toBe(401);
    expect((await server.call('DELETE', `/org/scim/tokens/${list.body[0].id}`, { headers: bearer(owner.token) })).status).toBe(404);
  });

  it('serves ServiceProviderConfig and ResourceTypes without credentials', async () => {
    const config = await server.call('GET', '/scim/v2/ServiceProviderConfig');
    expect(config.body).toMatchObject({ patch: { supported: true }, filter: { supported: true }, bulk: { supported: false } });
    const types = await server.call('GET', '/scim/v2/ResourceTypes');
    expect(types.body.Resources.map((r: any) => r.endpoint)).toEqual(['/Users', '/Groups']);
  });
});
