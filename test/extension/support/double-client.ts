// A real ConnectorClient for DOM tests: the fetch-based client from the extension, signed in to the contract double.
import { callConnector, httpClient } from '../../../extension/background/connector-http.js';
import type { ConnectorClient } from '../../../extension/connector-client.js';
import type { ContractDouble } from '../../e2e/support/contract-double.js';

export async function signedInClient(double: ContractDouble, user: { username: string; password: string }): Promise<ConnectorClient> {
  // The DOM's fetch speaks CORS like a browser: the double must allow this document's origin, as the connector allows the extension's.
  double.allowOrigin(globalThis.location.origin);
  const options = { baseUrl: double.url, token: () => null };
  const session = await callConnector(options, 'login', { body: { username: user.username, password: user.password } });
  return httpClient({ baseUrl: double.url, token: () => session.token });
}
