// The admin's Salesforce sync settings (contact match rule, bulk threshold, member status, PHI policy), stored and audited.
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.js';
import { fail } from '../errors.js';
import { loadQueries, type Db } from '../store/db.js';
import { PhiPolicy, defaultPhiPolicy, policyEntity } from './phi-policy.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['getSettings', 'saveSettings']);

/** A Salesforce field API name (standard or custom). */
const FieldName = z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,79}$/, 'expected a Salesforce field API name');

export const SyncSettings = z.strictObject({
  /** How a Contact finds its patient: a Contact field holding the FHIR Patient id, or the e-mail blind index. */
  matchBy: z.enum(['external-id', 'email']).default('email'),
  /** The Contact field that holds the FHIR Patient logical id (with matchBy external-id). */
  externalIdField: FieldName.default('FHIR_Patient_Id__c'),
  /** The FHIR endpoint name those ids belong to; without it every endpoint in the store is tried. */
  matchSource: z.string().min(1).max(100).optional(),
  /** Members above this count go through a Bulk API 2.0 ingest job, at or below it through REST composite. */
  bulkThreshold: z.number().int().min(1).max(1_000_000).default(200),
  /** The CampaignMember status given to pushed members (a value of the campaign's member statuses). */
  memberStatus: z.string().trim().min(1).max(40).default('Sent'),
  /** How often a bulk job's state is polled, and how long to wait for it. */
  bulkPollMs: z.number().int().min(5).max(60_000).default(2000),
  bulkTimeoutMs: z.number().int().min(1000).max(3_600_000).default(600_000),
  phiPolicy: PhiPolicy.default(defaultPhiPolicy),
});
export type SyncSettings = z.infer<typeof SyncSettings>;
export type SyncSettingsInput = z.input<typeof SyncSettings>;

export const defaultSyncSettings: SyncSettings = SyncSettings.parse({});

export class SyncSettingsStore {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditLog,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async get(): Promise<SyncSettings> {
    const [row] = await this.db.query<{ settings: unknown }>(q.getSettings);
    if (!row) return defaultSyncSettings;
    const raw = typeof row.settings === 'string' ? JSON.parse(row.settings) : row.settings;
    return SyncSettings.parse(raw);
  }

  /** Merges `patch` into the settings; the change and, separately, any PHI policy change are audited in the same transaction. */
  async update(patch: Partial<SyncSettingsInput>, actor: { name: string; role: string }): Promise<SyncSettings> {
    const current = await this.get();
    const parsed = SyncSettings.safeParse({ ...current, ...patch });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw fail('BAD_REQUEST', `Salesforce setting ${issue.path.join('.')}: ${issue.message}`, { field: issue.path.join('.') });
    }
    const next = parsed.data;
    const policyChanged = policyEntity(next.phiPolicy) !== policyEntity(current.phiPolicy);
    const at = this.clock();
    await this.db.transaction(async (tx) => {
      await tx.query(q.saveSettings, [JSON.stringify(next), actor.name, at]);
      await this.audit.append(
        [
          { actor: actor.name, role: actor.role, action: 'salesforce.settings-change', entity: 'salesforce/settings', at },
          ...(policyChanged
            ? [{ actor: actor.name, role: actor.role, action: 'salesforce.policy-change', purpose: 'operations', entity: policyEntity(next.phiPolicy), at }]
            : []),
        ],
        tx,
      );
    });
    return next;
  }
}
