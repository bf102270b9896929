/**
 * What the write path refuses to store. Memories are long-lived and recalled into prompts, so text that
 * carries no information, or that looks like a credential or a card number, is refused instead of being
 * kept (encrypted or not) for years. The policy is deliberately small and documented in docs/recall.md;
 * each rule names the reason recorded in the refusals log.
 */
export const REFUSAL_REASONS = ['no_content', 'aws_access_key', 'aws_secret_key', 'private_key', 'memorysync_api_key', 'payment_card'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

const ONLY_PUNCTUATION = /^[\s\p{P}\p{S}]*$/u;
const AWS_ACCESS_KEY = /\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b/;
// A 40-character secret next to the word that names it; a bare 40-char base64 string is too common to refuse.
const AWS_SECRET_KEY = /aws.{0,20}secret.{0,20}[:=]\s*["']?[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])/i;
const PRIVATE_KEY = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/;
const MEMORYSYNC_KEY = /\bms_(?:live|test)_[A-Za-z0-9]{16,}/;
// 13–19 digits, optionally grouped by single spaces or dashes.
const CARD_CANDIDATE = /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g;
// Issuer prefixes of the major networks (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro).
const CARD_PREFIX = /^(?:4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|6(?:011|5|4[4-9]|22)|35|30[0-5]|36|38|62|5[06-8]|6\d)/;

/** true when the digits pass the Luhn checksum (ISO/IEC 7812-1). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

function containsPaymentCard(text: string): boolean {
  for (const m of text.matchAll(CARD_CANDIDATE)) {
    const digits = m[0].replace(/[ -]/g, '');
    if (digits.length >= 13 && digits.length <= 19 && CARD_PREFIX.test(digits) && luhnValid(digits)) return true;
  }
  return false;
}

/** The first rule the text breaks, or `null` when it may be stored. */
export function refusalReason(text: string): RefusalReason | null {
  if (ONLY_PUNCTUATION.test(text)) return 'no_content';
  if (PRIVATE_KEY.test(text)) return 'private_key';
  if (AWS_ACCESS_KEY.test(text)) return 'aws_access_key';
  if (AWS_SECRET_KEY.test(text)) return 'aws_secret_key';
  if (MEMORYSYNC_KEY.test(text)) return 'memorysync_api_key';
  if (containsPaymentCard(text)) return 'payment_card';
  return null;
}

export const REFUSAL_MESSAGES: Record<RefusalReason, string> = {
  no_content: 'text contains no words, only whitespace or punctuation',
  aws_access_key: 'text looks like it contains an AWS access key id',
  aws_secret_key: 'text looks like it contains an AWS secret access key',
  private_key: 'text contains a private key',
  memorysync_api_key: 'text contains a MemorySync API key',
  payment_card: 'text contains a payment card number',
};
