// The shape of one content-script feature: it says where it applies and starts itself for one page view, cleaning up when the view ends.
import type { ConnectorClient } from '../connector-client.js';
import type { RecordRoute } from '../page/record-route.js';

export interface FeatureContext {
  document: Document;
  url: URL;
  /** The Contact or Lead shown, or null on other pages. */
  record: RecordRoute | null;
  client: ConnectorClient;
  /** Aborted when the user navigates away; features drop their listeners and UI on it. */
  signal: AbortSignal;
}

export interface Feature {
  name: string;
  applies(context: Pick<FeatureContext, 'url' | 'record'>): boolean;
  start(context: FeatureContext): void | Promise<void>;
}
