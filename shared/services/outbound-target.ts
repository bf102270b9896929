import { validationError } from '../errors.ts';
import { SsrfBlockedError, type OutboundHttp } from '../net/ssrf-guard.ts';

/**
 * Config-time check of a tenant-supplied target URL (webhooks, SIEM): refused by the SSRF guard → 422
 * on the `url` field. Delivery checks again on every request, since DNS can change after this.
 */
export async function assertOutboundTarget(outbound: OutboundHttp, url: string): Promise<void> {
  try {
    await outbound.verify(url);
  } catch (error) {
    if (error instanceof SsrfBlockedError) throw validationError(`url: ${error.reason}`, [{ loc: ['body', 'url'], msg: error.reason, type: 'value_error.url.blocked' }]);
    throw error;
  }
}
