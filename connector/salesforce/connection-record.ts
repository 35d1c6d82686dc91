// The stored Salesforce connection: who and where we signed in, the org's capabilities, watermarks and the last error code.
import { loadQueries, type Db } from '../store/db.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'getConnection',
  'saveConnection',
  'setLastError',
  'markPushed',
  'markOptOutPull',
  'markLinked',
  'markConsentPushed',
]);

export interface ConnectionRecord {
  username: string;
  loginUrl: string;
  clientId: string;
  instanceUrl: string | null;
  orgId: string | null;
  apiVersion: string | null;
  connectedAt: Date | null;
  hasConsentObject: boolean;
  lastPushAt: Date | null;
  lastOptOutPullAt: Date | null;
  lastLinkAt: Date | null;
  lastConsentPushAt: Date | null;
  optOutWatermark: Date | null;
  linkWatermark: Date | null;
  consentEventWatermark: string;
  lastError: string | null;
}

interface Row {
  username: string;
  login_url: string;
  client_id: string;
  instance_url: string | null;
  org_id: string | null;
  api_version: string | null;
  connected_at: Date | string | null;
  has_consent_object: boolean;
  last_push_at: Date | string | null;
  last_optout_pull_at: Date | string | null;
  last_link_at: Date | string | null;
  last_consent_push_at: Date | string | null;
  optout_watermark: Date | string | null;
  link_watermark: Date | string | null;
  consent_event_watermark: string | number;
  last_error: string | null;
}

const date = (v: Date | string | null) => (v === null ? null : new Date(v));

export class ConnectionStore {
  constructor(private readonly db: Db) {}

  async get(): Promise<ConnectionRecord | undefined> {
    const [r] = await this.db.query<Row>(q.getConnection);
    if (!r) return undefined;
    return {
      username: r.username,
      loginUrl: r.login_url,
      clientId: r.client_id,
      instanceUrl: r.instance_url,
      orgId: r.org_id,
      apiVersion: r.api_version,
      connectedAt: date(r.connected_at),
      hasConsentObject: r.has_consent_object,
      lastPushAt: date(r.last_push_at),
      lastOptOutPullAt: date(r.last_optout_pull_at),
      lastLinkAt: date(r.last_link_at),
      lastConsentPushAt: date(r.last_consent_push_at),
      optOutWatermark: date(r.optout_watermark),
      linkWatermark: date(r.link_watermark),
      consentEventWatermark: String(r.consent_event_watermark),
      lastError: r.last_error,
    };
  }

  async saveConnected(c: { username: string; loginUrl: string; clientId: string; instanceUrl: string; orgId: string; apiVersion: string; hasConsentObject: boolean }, at: Date): Promise<void> {
    await this.db.query(q.saveConnection, [c.username, c.loginUrl, c.clientId, c.instanceUrl, c.orgId, c.apiVersion, at, c.hasConsentObject]);
  }

  /** Records the error code of a failed call (the row exists only once connected). */
  async setLastError(code: string | null, at: Date): Promise<void> {
    await this.db.query(q.setLastError, [code, at]);
  }

  async markPushed(at: Date): Promise<void> {
    await this.db.query(q.markPushed, [at]);
  }

  async markOptOutPull(at: Date, watermark: Date | null): Promise<void> {
    await this.db.query(q.markOptOutPull, [at, watermark]);
  }

  async markLinked(at: Date, watermark: Date | null): Promise<void> {
    await this.db.query(q.markLinked, [at, watermark]);
  }

  async markConsentPushed(at: Date, lastEventId: string): Promise<void> {
    await this.db.query(q.markConsentPushed, [at, lastEventId]);
  }
}
