// The interface every UI component talks to the connector through, so the same components run in the extension and in a SMART app page.
import type { CallInput, ResponseOf, RouteName } from '../connector/api/contract.js';

/** Calls contract routes. The extension's client goes through the background worker; a SMART app page can pass the fetch-based one. */
export interface ConnectorClient {
  call<N extends RouteName>(route: N, input: CallInput<N>): Promise<ResponseOf<N>>;
}
