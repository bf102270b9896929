import { describe, expect, it } from 'vitest';
import { applyPatch } from '#shared/services/scim/scim-patch.ts';

const GROUP = {
  displayName: 'Tour Guides',
  members: [
    { value: '2819c223-7f76-453a-919d-413861904646', display: 'Babs Jensen' },
    { value: '902c246b-6245-4190-8e05-00816be7344a', display: 'Mandy Pepperidge' },
  ],
};

describe('SCIM PATCH operations (RFC 7644 §3.5.2 examples)', () => {
  it('adds members to a multi-valued attribute without duplicating existing ones (§3.5.2.1)', () => {
    const out = applyPatch(GROUP, [{ op: 'add', path: 'members', value: [{ value: '2819c223-7f76-453a-919d-413861904646', display: 'Babs Jensen' }, { value: 'new' }] }]);
    expect(out.members).toHaveLength(3);
    expect(GROUP.members).toHaveLength(2); // the input is never mutated
  });

  it('adds attributes without a path, merging complex and appending multi-valued ones (§3.5.2.1)', () => {
    const out = applyPatch({ emails: [{ value: 'a@x', type: 'work' }], name: { givenName: 'B' } }, [{ op: 'add', value: { emails: [{ value: 'babs@jensen.org', type: 'home' }], nickname: 'Babs', name: { familyName: 'J' } } }]);
    expect(out).toEqual({ emails: [{ value: 'a@x', type: 'work' }, { value: 'babs@jensen.org', type: 'home' }], nickname: 'Babs', name: { givenName: 'B', familyName: 'J' } });
  });

  it('removes one member by filter, all members, and by Azure-style value list (§3.5.2.2)', () => {
    expect(applyPatch(GROUP, [{ op: 'remove', path: 'members[value eq "2819c223-7f76-453a-919d-413861904646"]' }]).members).toEqual([GROUP.members[1]]);
    expect(applyPatch(GROUP, [{ op: 'remove', path: 'members' }])).not.toHaveProperty('members');
    expect(applyPatch(GROUP, [{ op: 'remove', path: 'members', value: [{ value: '902c246b-6245-4190-8e05-00816be7344a' }] }]).members).toEqual([GROUP.members[0]]);
  });

  it('replaces members, a filtered element’s sub-attribute and a nested attribute (§3.5.2.3)', () => {
    expect(applyPatch(GROUP, [{ op: 'replace', path: 'members', value: [{ value: 'only' }] }]).members).toEqual([{ value: 'only' }]);
    const user = { addresses: [{ type: 'work', streetAddress: '100 Universal City Plaza' }, { type: 'home', streetAddress: 'x' }], name: { givenName: 'B' } };
    const out = applyPatch(user, [{ op: 'replace', path: 'addresses[type eq "work"].streetAddress', value: '1010 Broadway Ave' }, { op: 'Replace', path: 'name.givenName', value: 'Barbara' }]);
    expect(out.addresses).toEqual([{ type: 'work', streetAddress: '1010 Broadway Ave' }, { type: 'home', streetAddress: 'x' }]);
    expect(out.name).toEqual({ givenName: 'Barbara' });
  });

  it('keeps the attribute casing already present and writes extension attributes under their URN', () => {
    const out = applyPatch({ displayName: 'a' }, [{ op: 'replace', path: 'DISPLAYNAME', value: 'b' }, { op: 'add', path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber', value: '701984' }]);
    expect(out).toEqual({ displayName: 'b', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { employeeNumber: '701984' } });
  });

  it('answers noTarget for a filter that matches nothing and a remove without path, invalidPath for a bad path', () => {
    expect(() => applyPatch(GROUP, [{ op: 'replace', path: 'members[value eq "nobody"].display', value: 'x' }])).toThrow(expect.objectContaining({ code: 'noTarget' }));
    expect(() => applyPatch(GROUP, [{ op: 'remove' }])).toThrow(expect.objectContaining({ code: 'noTarget' }));
    expect(() => applyPatch(GROUP, [{ op: 'add', path: 'members[value eq', value: 1 }])).toThrow(expect.objectContaining({ code: 'invalidPath' }));
    expect(() => applyPatch(GROUP, [{ op: 'move', path: 'members' }])).toThrow(expect.objectContaining({ code: 'invalidValue' }));
  });
});
