import { describe, expect, it } from 'vitest';
import { matchesFilter, parseFilter } from '#shared/services/scim/scim-filter.ts';

/** The RFC 7643 §8.2 full User example, trimmed to what the filters below read. */
const BJENSEN = {
  id: '2819c223-7f76-453a-919d-413861904646', externalId: '701984', userName: 'bjensen@example.com',
  name: { familyName: 'Jensen', givenName: 'Barbara' }, title: 'Tour Guide', userType: 'Employee', active: true,
  emails: [{ value: 'bjensen@example.com', type: 'work', primary: true }, { value: 'babs@jensen.org', type: 'home' }],
  meta: { lastModified: '2011-05-13T04:42:34Z' },
};
const matches = (filter: string) => matchesFilter(BJENSEN, parseFilter(filter));

describe('SCIM filters (RFC 7644 §3.4.2.2 examples)', () => {
  it.each([
    ['userName eq "bjensen@example.com"', true],
    ['userName Eq "BJENSEN@example.com"', true],
    ['name.familyName co "ens"', true],
    ['userName sw "J"', false],
    ['userName sw "b"', true],
    ['title pr', true],
    ['nickName pr', false],
    ['meta.lastModified gt "2011-05-13T04:42:34Z"', false],
    ['meta.lastModified ge "2011-05-13T04:42:34Z"', true],
    ['title pr and userType eq "Employee"', true],
    ['title pr or userType eq "Intern"', true],
    ['userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")', true],
    ['userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")', false],
    ['emails[type eq "work" and value co "@example.com"]', true],
    ['emails[type eq "home" and value co "@example.com"]', false],
    ['externalId eq "701984"', true],
    ['active eq true', true],
    ['urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bjensen"', true],
  ])('%s → %s', (filter, expected) => {
    expect(matches(filter)).toBe(expected);
  });

  it('compares externalId and id case-exactly and everything else case-insensitively', () => {
    expect(matches('externalId eq "701984"')).toBe(true);
    expect(matchesFilter({ externalId: 'AbC' }, parseFilter('externalId eq "abc"'))).toBe(false);
    expect(matchesFilter({ displayName: 'AbC' }, parseFilter('displayName eq "abc"'))).toBe(true);
  });

  it.each(['', 'userName eq', 'userName xx "a"', 'userName eq "unterminated', '(userName eq "a"', 'userName eq "a" junk'])('refuses %j with invalidFilter', (filter) => {
    expect(() => parseFilter(filter)).toThrow(expect.objectContaining({ code: 'invalidFilter', status: 400 }));
  });
});
