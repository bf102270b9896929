import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Client } from '@opensearch-project/opensearch';
import { AwsSigv4Signer } from '@opensearch-project/opensearch/aws';

export interface OpenSearchClientOptions {
  /** https://search-….es.amazonaws.com or https://….aoss.amazonaws.com */
  endpoint: string;
  region: string;
  /** `es` for OpenSearch Service domains, `aoss` for OpenSearch Serverless */
  service: 'es' | 'aoss';
  requestTimeoutMs?: number;
}

/**
 * A client that signs every request with SigV4 using the default credential chain (the Lambda
 * role on AWS). Credentials are resolved per request by the provider, which caches and refreshes
 * them itself. Whoever creates the client closes it.
 */
export function createOpenSearchClient(options: OpenSearchClientOptions): Client {
  const credentials = defaultProvider();
  return new Client({
    ...AwsSigv4Signer({ region: options.region, service: options.service, getCredentials: () => credentials() }),
    node: options.endpoint,
    requestTimeout: options.requestTimeoutMs ?? 5_000,
    maxRetries: 2,
  });
}
