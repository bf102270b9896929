import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { generate } from 'selfsigned';
import { SignedXml } from 'xml-crypto';

/**
 * A throwaway SAML identity provider for tests: an RSA key made with node:crypto, a self-signed
 * certificate over it (`selfsigned`), and Responses signed with xml-crypto (the XML-DSig library
 * node-saml itself verifies with) — real XML signatures, not a fake.
 */
export interface TestIdp {
  entityId: string;
  privateKey: string;
  cert: string;
}

export async function newTestIdp(entityId = `https://idp-${randomBytes(3).toString('hex')}.test.example/saml`): Promise<TestIdp> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const pems = await generate([{ name: 'commonName', value: new URL(entityId).hostname }], { keyPair: { privateKey, publicKey }, algorithm: 'sha256', notAfterDate: new Date(Date.now() + 2 * 86_400_000) });
  return { entityId, privateKey, cert: pems.cert };
}

/** The AuthnRequest of an SP-initiated login URL (HTTP-Redirect binding: deflated, base64, in `SAMLRequest`). */
export function readAuthnRequest(location: string): { id: string; acs: string | undefined; issuer: string | undefined; xml: string } {
  const encoded = new URL(location).searchParams.get('SAMLRequest');
  if (!encoded) throw new Error(`no SAMLRequest in ${location}`);
  const xml = inflateRawSync(Buffer.from(encoded, 'base64')).toString('utf8');
  return {
    id: /\sID="([^"]+)"/.exec(xml)![1],
    acs: /AssertionConsumerServiceURL="([^"]+)"/.exec(xml)?.[1],
    issuer: /<(?:\w+:)?Issuer[^>]*>([^<]+)</.exec(xml)?.[1],
    xml,
  };
}

export interface AssertionOptions {
  inResponseTo: string;
  acs: string;
  audience: string;
  nameId: string;
  nameIdFormat?: string;
  email?: string;
  displayName?: string;
  /** minutes from now; negative for an expired assertion */
  notOnOrAfterMinutes?: number;
  issuer?: string;
  /** what to sign: the assertion (default), the whole response, or nothing */
  sign?: 'assertion' | 'response' | 'none';
  /** the InResponseTo inside the (signed) SubjectConfirmationData, when it should differ */
  subjectInResponseTo?: string;
  recipient?: string;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');

/** A SAML 2.0 Response as an IdP's HTTP-POST binding sends it (base64), signed as asked. */
export function samlResponse(idp: TestIdp, o: AssertionOptions): string {
  const now = Date.now();
  const until = iso(now + (o.notOnOrAfterMinutes ?? 5) * 60_000);
  const issuer = o.issuer ?? idp.entityId;
  const responseId = `_r${randomBytes(16).toString('hex')}`;
  const assertionId = `_a${randomBytes(16).toString('hex')}`;
  const attrs = [
    o.email ? `<saml:Attribute Name="email"><saml:AttributeValue>${esc(o.email)}</saml:AttributeValue></saml:Attribute>` : '',
    o.displayName ? `<saml:Attribute Name="displayName"><saml:AttributeValue>${esc(o.displayName)}</saml:AttributeValue></saml:Attribute>` : '',
  ].join('');
  const assertion =
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${assertionId}" Version="2.0" IssueInstant="${iso(now)}">` +
    `<saml:Issuer>${esc(issuer)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="${o.nameIdFormat ?? 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent'}">${esc(o.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="${esc(o.subjectInResponseTo ?? o.inResponseTo)}" NotOnOrAfter="${until}" Recipient="${esc(o.recipient ?? o.acs)}"/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${iso(now - 60_000)}" NotOnOrAfter="${until}"><saml:AudienceRestriction><saml:Audience>${esc(o.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="${assertionId}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    (attrs ? `<saml:AttributeStatement>${attrs}</saml:AttributeStatement>` : '') +
    `</saml:Assertion>`;
  let xml =
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${responseId}" Version="2.0" IssueInstant="${iso(now)}" Destination="${esc(o.acs)}" InResponseTo="${esc(o.inResponseTo)}">` +
    `<saml:Issuer>${esc(issuer)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
    assertion +
    `</samlp:Response>`;
  const sign = o.sign ?? 'assertion';
  if (sign !== 'none') xml = signXml(idp, xml, sign === 'assertion' ? 'Assertion' : 'Response');
  return Buffer.from(xml, 'utf8').toString('base64');
}

/** Enveloped RSA-SHA256 signature over the element, placed after its Issuer as the SAML schema wants. */
export function signXml(idp: TestIdp, xml: string, element: 'Assertion' | 'Response'): string {
  const sig = new SignedXml({
    privateKey: idp.privateKey,
    publicCert: idp.cert,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  const xpath = element === 'Assertion' ? "//*[local-name(.)='Assertion']" : "/*[local-name(.)='Response']";
  sig.addReference({ xpath, transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'], digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256' });
  sig.computeSignature(xml, { location: { reference: `${xpath}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}
