// The Salesforce sync service: connect, status, contact links, campaign push, consent write-back and opt-out pull.
import type { AuditLog } from '../audit/audit-log.js';
import type { Config } from '../config.js';
import type { ConsentRegistry } from '../consent/registry.js';
import { fail, OutreachError } from '../errors.js';
import { silentLog, type Log } from '../logger.js';
import type { FieldCipher } from '../store/cipher.js';
import { loadQueries, type Db } from '../store/db.js';
import { pushCampaign, type PushReport } from './campaign-push.js';
import { ConnectionStore, type ConnectionRecord } from './connection-record.js';
import { ContactLinks, type LinkReport } from './contact-links.js';
import { pullOptOuts, pushConsent, type ConsentPushReport, type OptOutPullReport } from './consent-sync.js';
import { describe } from './org-api.js';
import { openOrgSession, requireAuthConfig, trustSalesforceCas, type OrgSession, type SalesforceAuthConfig } from './org-client.js';
import type { CampaignForPush, PhiPolicy } from './phi-policy.js';
import { salesforceError } from './salesforce-error.js';
import { SyncSettingsStore, type SyncSettings, type SyncSettingsInput } from './sync-settings.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['storedCampaign', 'snapshotMembers']);

export interface Actor {
  name: string;
  role: string;
}

export interface SalesforceSyncDeps {
  db: Db;
  cipher: FieldCipher;
  audit: AuditLog;
  consent: ConsentRegistry;
  /** config.salesforce */
  config: Config['salesforce'];
  /** PEM CAs trusted on top of Node's roots for the org's TLS (config.extraCaFile). */
  extraCas?: readonly string[];
  clock?: () => Date;
  log?: Log;
}

/** The API's SalesforceStatus: what the store knows, no call to the org. */
export interface SalesforceStatusView {
  connected: boolean;
  instanceUrl: string | null;
  username: string | null;
  lastPushAt: string | null;
  lastOptOutPullAt: string | null;
  error: string | null;
}

export interface SalesforceDetails extends SalesforceStatusView {
  orgId: string | null;
  apiVersion: string | null;
  hasConsentObject: boolean;
  linkedContacts: number;
  lastLinkAt: string | null;
  lastConsentPushAt: string | null;
  settings: SyncSettings;
}

export interface ConnectReport {
  instanceUrl: string;
  orgId: string;
  apiVersion: string;
  hasConsentObject: boolean;
  links: LinkReport;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export class SalesforceSync {
  private readonly db: Db;
  private readonly audit: AuditLog;
  private readonly consent: ConsentRegistry;
  private readonly clock: () => Date;
  private readonly log: Log;
  private readonly connections: ConnectionStore;
  private readonly settingsStore: SyncSettingsStore;
  readonly links: ContactLinks;
  private session: Promise<OrgSession> | undefined;

  constructor(private readonly deps: SalesforceSyncDeps) {
    this.db = deps.db;
    this.audit = deps.audit;
    this.consent = deps.consent;
    this.clock = deps.clock ?? (() => new Date());
    this.log = deps.log ?? silentLog;
    this.connections = new ConnectionStore(deps.db);
    this.settingsStore = new SyncSettingsStore(deps.db, deps.audit, this.clock);
    this.links = new ContactLinks(deps.db, deps.cipher);
    trustSalesforceCas(deps.extraCas ?? []);
  }

  private auth(): SalesforceAuthConfig {
    return requireAuthConfig(this.deps.config);
  }

  /** Runs the JWT bearer flow anew, describes Contact (and the consent object), stores the connection and links Contacts. */
  async connect(actor: Actor): Promise<ConnectReport> {
    const auth = this.auth();
    this.session = undefined;
    const session = await this.guard('sign in', () => openOrgSession(auth, { fresh: true }));
    this.session = Promise.resolve(session);
    const settings = await this.settings();
    const { hasConsentObject } = await this.guard('describe Contact', async () => {
      const contact = await describe(session.connection, 'Contact');
      const fields = new Set(contact?.fields.map((f) => f.name) ?? []);
      if (!fields.has('HasOptedOutOfEmail')) throw fail('SALESFORCE_ERROR', 'The org has no Contact.HasOptedOutOfEmail: INVALID_FIELD', { salesforceCode: 'INVALID_FIELD' });
      if (settings.matchBy === 'external-id' && !fields.has(settings.externalIdField)) {
        throw fail('SALESFORCE_ERROR', `Contact has no field ${settings.externalIdField}: INVALID_FIELD`, { salesforceCode: 'INVALID_FIELD' });
      }
      return { hasConsentObject: (await describe(session.connection, 'ContactPointTypeConsent')) !== undefined };
    });
    const at = this.clock();
    await this.connections.saveConnected(
      { username: auth.username, loginUrl: auth.loginUrl, clientId: auth.clientId, instanceUrl: session.instanceUrl, orgId: session.orgId, apiVersion: session.apiVersion, hasConsentObject },
      at,
    );
    await this.audit.append({ actor: actor.name, role: actor.role, action: 'salesforce.connect', entity: `salesforce-org/${session.orgId || 'unknown'}`, at });
    this.log.info({ apiVersion: session.apiVersion, hasConsentObject }, 'salesforce connected');
    const links = await this.linkContacts();
    return { instanceUrl: session.instanceUrl, orgId: session.orgId, apiVersion: session.apiVersion, hasConsentObject, links };
  }

  /** What the API shows: from the store, no call to the org. */
  async status(): Promise<SalesforceStatusView> {
    const record = await this.connections.get();
    return this.view(record);
  }

  private view(record: ConnectionRecord | undefined): SalesforceStatusView {
    const sf = this.deps.config;
    const configured = Boolean(sf.loginUrl && sf.clientId && sf.username && sf.jwtKeyFile);
    return {
      connected: Boolean(record?.connectedAt) && configured,
      instanceUrl: record?.instanceUrl ?? null,
      username: record?.username ?? sf.username ?? null,
      lastPushAt: iso(record?.lastPushAt),
      lastOptOutPullAt: iso(record?.lastOptOutPullAt),
      error: configured ? (record?.lastError ?? null) : 'SALESFORCE_NOT_CONFIGURED',
    };
  }

  async details(): Promise<SalesforceDetails> {
    const record = await this.connections.get();
    return {
      ...this.view(record),
      orgId: record?.orgId ?? null,
      apiVersion: record?.apiVersion ?? null,
      hasConsentObject: record?.hasConsentObject ?? false,
      linkedContacts: await this.links.count(),
      lastLinkAt: iso(record?.lastLinkAt),
      lastConsentPushAt: iso(record?.lastConsentPushAt),
      settings: await this.settings(),
    };
  }

  settings(): Promise<SyncSettings> {
    return this.settingsStore.get();
  }

  /** Changes sync settings; a PHI policy change is audited as `salesforce.policy-change` naming the policy. */
  updateSettings(patch: Partial<SyncSettingsInput>, actor: Actor): Promise<SyncSettings> {
    return this.settingsStore.update(patch, actor);
  }

  setPhiPolicy(policy: PhiPolicy, actor: Actor): Promise<SyncSettings> {
    return this.settingsStore.update({ phiPolicy: policy }, actor);
  }

  /** Links Contacts changed since the last pull to patients. */
  async linkContacts(): Promise<LinkReport> {
    const { connection, record } = await this.connected();
    const settings = await this.settings();
    const report = await this.guard('read Contacts', () => this.links.pull(connection, settings, record.linkWatermark, this.clock));
    await this.connections.markLinked(this.clock(), report.watermark);
    this.log.info({ contacts: report.contacts, linked: report.linked, unmatched: report.unmatched, ambiguous: report.ambiguous }, 'salesforce contacts linked');
    return report;
  }

  /** Pushes a campaign (name and membership; more only as the PHI policy allows). Links new Contacts first. */
  async pushCampaign(campaign: CampaignForPush, actor: Actor): Promise<PushReport> {
    const { connection } = await this.connected();
    await this.linkContacts();
    const settings = await this.settings();
    const report = await this.guard('push the campaign', () =>
      pushCampaign(connection, campaign, { db: this.db, audit: this.audit, links: this.links, settings, actor, clock: this.clock }),
    );
    await this.connections.markPushed(this.clock());
    this.log.info({ via: report.via, added: report.added, unlinked: report.unlinked, failedKinds: Object.keys(report.failed).length }, 'salesforce campaign pushed');
    return report;
  }

  /** Reads an approved campaign from the store (name, purpose, segment name, frozen audience) and pushes it. */
  async pushStoredCampaign(campaignId: string, actor: Actor): Promise<PushReport> {
    return this.pushCampaign(await this.storedCampaign(campaignId), actor);
  }

  async storedCampaign(campaignId: string): Promise<CampaignForPush> {
    if (!/^[1-9][0-9]{0,17}$/.test(campaignId)) throw fail('NOT_FOUND', 'no such campaign', { field: 'campaignId' });
    const [c] = await this.db.query<{
      id: string | number;
      name: string;
      purpose: string;
      status: string;
      audience_kind: string;
      snapshot_id: string | number | null;
      contact_patient_id: string | number | null;
      segment_name: string | null;
    }>(q.storedCampaign, [campaignId]);
    if (!c) throw fail('NOT_FOUND', 'no such campaign', { field: 'campaignId' });
    let members: number[];
    if (c.audience_kind === 'contact' && c.contact_patient_id !== null) members = [Number(c.contact_patient_id)];
    else if (c.snapshot_id !== null) members = (await this.db.query<{ patient_id: string | number }>(q.snapshotMembers, [c.snapshot_id])).map((r) => Number(r.patient_id));
    else throw fail('CAMPAIGN_STATE', 'the campaign has no approved audience yet: approve it before pushing it to Salesforce');
    return {
      key: `campaign/${c.id}`,
      name: c.name,
      purpose: c.purpose,
      ...(c.segment_name ? { segmentName: c.segment_name } : {}),
      memberPatientIds: members,
    };
  }

  /** Pulls Salesforce opt-outs, then writes consent changed since the last write-back to Contact.HasOptedOutOfEmail (and ContactPointTypeConsent). */
  async pushConsent(actor: Actor): Promise<ConsentPushReport> {
    // Opt-outs made in Salesforce come in first, so the state written back already holds them.
    await this.pullOptOuts();
    const { connection, record } = await this.connected();
    const { report, lastEventId, complete } = await this.guard('write consent back', () =>
      pushConsent(connection, record.consentEventWatermark, record.hasConsentObject, actor, {
        db: this.db,
        audit: this.audit,
        consent: this.consent,
        links: this.links,
        clock: this.clock,
      }),
    );
    if (complete) await this.connections.markConsentPushed(this.clock(), lastEventId);
    return report;
  }

  /** Pulls opt-outs made in Salesforce since the last watermark into the authorization registry. */
  async pullOptOuts(): Promise<OptOutPullReport> {
    const { connection } = await this.connected();
    await this.linkContacts();
    const record = (await this.connections.get())!;
    const report = await this.guard('read opted-out Contacts', () =>
      pullOptOuts(connection, record.optOutWatermark, record.hasConsentObject, { db: this.db, audit: this.audit, consent: this.consent, links: this.links, clock: this.clock }),
    );
    await this.connections.markOptOutPull(this.clock(), report.watermark);
    this.log.info({ contacts: report.contacts, recorded: report.recorded, unlinked: report.unlinked }, 'salesforce opt-outs pulled');
    return report;
  }

  private async connected(): Promise<{ connection: OrgSession['connection']; record: ConnectionRecord }> {
    const auth = this.auth();
    const record = await this.connections.get();
    if (!record?.connectedAt) throw fail('SALESFORCE_NOT_CONFIGURED', 'Salesforce is not connected: run `outreach salesforce connect`');
    this.session ??= this.guard('sign in', () => openOrgSession(auth));
    try {
      return { connection: (await this.session).connection, record };
    } catch (err) {
      this.session = undefined;
      throw err;
    }
  }

  /** Runs a call to the org: a refusal becomes SALESFORCE_ERROR with Salesforce's code, stored as the last error. */
  private async guard<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err instanceof OutreachError ? err : salesforceError(err, operation);
      if (e.code === 'SALESFORCE_ERROR') {
        const code = String(e.details.salesforceCode ?? 'UNKNOWN_ERROR');
        await this.connections.setLastError(code, this.clock()).catch(() => undefined);
        this.log.warn({ salesforceCode: code, operation }, 'salesforce refused a call');
      }
      throw e;
    }
  }
}
