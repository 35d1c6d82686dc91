// Consent routes and the patient lookup: the authorization registry's state and history as the CRM side may see them, every read audited.
import type { App } from '../../app.js';
import { phi } from '../../../fhir/phi.js';
import { fail } from '../../errors.js';
import { decide, type CurrentAuthorization } from '../../consent/gate.js';
import { CHANNEL_WIDE, type AuthorizationSource } from '../../consent/purposes.js';
import type { AuthorizationRecord } from '../../consent/registry.js';
import { loadQueries } from '../../store/db.js';
import type { ConsentStatus, PatientSummary } from '../contract.js';
import type { AuditWrite } from '../audit-batcher.js';
import type { Session } from '../../users/authorize.js';
import { actorOf, auditedBy, sessionOf, type Handlers } from '../handler.js';

const q = loadQueries(new URL('../queries.sql', import.meta.url), ['patientExists', 'lastCampaign'] as const);

const asCurrent = (r: AuthorizationRecord | undefined): CurrentAuthorization | undefined =>
  r && { id: r.id, status: r.status, grantedAt: r.grantedAt, expiresAt: r.expiresAt, textVersion: r.textVersion };

/** The badge state from a patient's current rows (the same `decide` rule as the dispatch-time gate). */
export function consentStatusOf(current: readonly AuthorizationRecord[], now: Date): ConsentStatus {
  const email = current.filter((r) => r.channel === 'email');
  const marketing = email.find((r) => r.purpose === 'marketing');
  const channel = email.find((r) => r.purpose === CHANNEL_WIDE);
  const decision = decide('marketing', now, asCurrent(marketing), asCurrent(channel));
  let state: ConsentStatus['marketing']['state'] = 'none';
  if (marketing?.status === 'revoked') state = 'revoked';
  else if (marketing?.status === 'expired' || (marketing?.expiresAt && marketing.expiresAt.getTime() <= now.getTime())) state = 'expired';
  else if (marketing?.status === 'active') state = 'active';
  const optedOut = channel?.status === 'revoked';
  return {
    marketingAuthorized: decision.allowed,
    marketing: {
      state,
      grantedAt: marketing?.grantedAt?.toISOString() ?? null,
      expiresAt: marketing?.expiresAt?.toISOString() ?? null,
    },
    emailOptedOut: optedOut,
    optedOutAt: optedOut ? channel!.recordedAt.toISOString() : null,
  };
}

const sources: Record<AuthorizationSource, 'api' | 'fhir' | 'salesforce' | 'unsubscribe' | 'portal'> = {
  admin: 'api',
  'signed-form': 'api',
  'fhir-consent': 'fhir',
  crm: 'salesforce',
  'unsubscribe-link': 'unsubscribe',
};

function eventAction(r: AuthorizationRecord): 'granted' | 'revoked' | 'expired' | 'opted-out' | 'opted-in' {
  if (r.purpose === CHANNEL_WIDE) return r.status === 'revoked' ? 'opted-out' : 'opted-in';
  return r.status === 'active' ? 'granted' : r.status;
}

export function consentHandlers(app: App, auditRead: AuditWrite, clock: () => Date = () => new Date()): Handlers {
  const requirePatient = async (patientId: string): Promise<string> => {
    if (!/^[1-9][0-9]{0,17}$/.test(patientId) || (await app.db.query(q.patientExists, [patientId])).length === 0) {
      throw fail('NOT_FOUND', 'no such patient', { field: 'patientId' });
    }
    return patientId;
  };
  const status = async (patientId: string) => consentStatusOf(await app.consent.current(patientId), clock());

  /** The PHI-safe summary of the one patient a CRM id or an e-mail address (blind index) names; every lookup audited. */
  const lookup = async (by: { crmId?: string; email?: string }, session: Session): Promise<PatientSummary> => {
    const key = by.crmId !== undefined ? 'crm-id' : 'email';
    const ids = by.crmId !== undefined ? await app.facts.findByCrmId(by.crmId) : await app.facts.findByEmail(by.email!);
    if (ids.length > 1) {
      await auditRead(auditedBy(session, { action: 'patient.lookup', purpose: 'operations', entity: `lookup/${key}`, outcome: 'failure' }));
      throw fail('CONFLICT', `more than one patient matches this ${key === 'email' ? 'e-mail address' : 'CRM id'}: link the CRM record to one patient`, {
        field: key === 'email' ? 'email' : 'crmId',
      });
    }
    const [id] = ids;
    if (id === undefined) {
      await auditRead(auditedBy(session, { action: 'patient.lookup', purpose: 'operations', entity: `lookup/${key}`, outcome: 'success' }));
      return { found: false, patientId: null, consent: null, lastCampaign: null };
    }
    const [consent, [last]] = await Promise.all([
      status(String(id)),
      app.db.query<{ id: string; name: string; sent_at: Date }>(q.lastCampaign, [String(id)]),
    ]);
    await auditRead(auditedBy(session, { action: 'patient.lookup', purpose: 'operations', patientId: id, entity: `lookup/${key}` }));
    return {
      found: true,
      patientId: String(id),
      consent,
      lastCampaign: last ? { id: String(last.id), name: last.name, sentAt: new Date(last.sent_at).toISOString() } : null,
    };
  };

  return {
    // GET takes a CRM id only (the contract refuses an e-mail in the URL); POST takes either, in the body.
    lookupPatient: async ({ query }, context) => lookup({ crmId: query.crmId }, sessionOf(context)),
    lookupPatientByBody: async ({ body }, context) => lookup(body, sessionOf(context)),

    consentStatus: async ({ params }, context) => {
      const session = sessionOf(context);
      const patientId = await requirePatient(params.patientId);
      const result = await status(patientId);
      await auditRead(auditedBy(session, { action: 'consent.read', purpose: 'operations', patientId }));
      return result;
    },

    grantConsent: async ({ params, body }, context) => {
      const session = sessionOf(context);
      const patientId = await requirePatient(params.patientId);
      await app.consent.grant(
        {
          patientId,
          purpose: body.purpose,
          channel: body.channel,
          expiresAt: body.expiresAt ? new Date(body.expiresAt) : null,
          source: 'admin',
          sourceRef: body.evidence,
          textVersion: body.textVersion ?? null,
        },
        actorOf(session),
      );
      return status(patientId);
    },

    revokeConsent: async ({ params, body }, context) => {
      const session = sessionOf(context);
      const patientId = await requirePatient(params.patientId);
      const change = { patientId, channel: body.channel, source: 'admin' as const, reason: phi(body.reason) };
      if (body.purpose) await app.consent.revoke({ ...change, purpose: body.purpose }, actorOf(session));
      else await app.consent.optOut(change, actorOf(session));
      return status(patientId);
    },

    consentHistory: async ({ params }, context) => {
      const session = sessionOf(context);
      const patientId = await requirePatient(params.patientId);
      const rows = await app.consent.history(patientId);
      await auditRead(auditedBy(session, { action: 'consent.history', purpose: 'operations', patientId }));
      return {
        patientId,
        events: rows.map((r) => ({
          at: r.recordedAt.toISOString(),
          action: eventAction(r),
          purpose: r.purpose === CHANNEL_WIDE ? null : r.purpose,
          channel: r.channel,
          source: sources[r.source],
          actor: r.recordedBy,
        })),
      };
    },
  };
}
