// An audit row as a FHIR R4 AuditEvent: the accounting-of-disclosures export format.
import type { AuditEvent } from 'fhir/r4.js';
import type { AuditRecord } from './audit-log.js';

export const auditHashExtension = 'urn:secure-outreach:fhir:StructureDefinition/audit-chain-hash';
export const patientBlindSystem = 'urn:secure-outreach:patient-blind';

const dcm = 'http://dicom.nema.org/resources/ontology/DCM';
const actReason = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';

/** The verb of `noun.verb` decides the FHIR action code and event type. */
const verbs: Record<string, { action: AuditEvent['action']; type: { code: string; display: string } }> = {
  read: { action: 'R', type: { code: '110110', display: 'Patient Record' } },
  show: { action: 'R', type: { code: '110110', display: 'Patient Record' } },
  history: { action: 'R', type: { code: '110110', display: 'Patient Record' } },
  preview: { action: 'R', type: { code: '110110', display: 'Patient Record' } },
  view: { action: 'R', type: { code: '110110', display: 'Patient Record' } },
  phi: { action: 'R', type: { code: '110110', display: 'Patient Record' } },
  sync: { action: 'C', type: { code: '110107', display: 'Import' } },
  import: { action: 'C', type: { code: '110107', display: 'Import' } },
  export: { action: 'R', type: { code: '110106', display: 'Export' } },
  send: { action: 'E', type: { code: '110106', display: 'Export' } },
  disclose: { action: 'E', type: { code: '110106', display: 'Export' } },
  login: { action: 'E', type: { code: '110114', display: 'User Authentication' } },
  logout: { action: 'E', type: { code: '110114', display: 'User Authentication' } },
  grant: { action: 'C', type: { code: '110110', display: 'Patient Record' } },
  revoke: { action: 'U', type: { code: '110110', display: 'Patient Record' } },
  expire: { action: 'U', type: { code: '110110', display: 'Patient Record' } },
  delete: { action: 'D', type: { code: '110110', display: 'Patient Record' } },
  'opt-out': { action: 'U', type: { code: '110110', display: 'Patient Record' } },
  'opt-in': { action: 'U', type: { code: '110110', display: 'Patient Record' } },
  'evidence-read': { action: 'R', type: { code: '110110', display: 'Patient Record' } },
  create: { action: 'C', type: { code: '110137', display: 'User Security Attributes Changed' } },
  disable: { action: 'U', type: { code: '110137', display: 'User Security Attributes Changed' } },
  enable: { action: 'U', type: { code: '110137', display: 'User Security Attributes Changed' } },
  'change-password': { action: 'U', type: { code: '110137', display: 'User Security Attributes Changed' } },
  'reset-password': { action: 'U', type: { code: '110137', display: 'User Security Attributes Changed' } },
};
const otherVerb = { action: 'E' as const, type: { code: '110100', display: 'Application Activity' } };

/** Our purposes of use in v3-ActReason where a code exists. */
const purposeCodes: Record<string, string> = {
  marketing: 'HMARKT',
  treatment: 'TREAT',
  'treatment-reminder': 'TREAT',
  'appointment-reminder': 'TREAT',
  'refill-reminder': 'TREAT',
  'screening-reminder': 'TREAT',
  'care-gap-reminder': 'TREAT',
  operations: 'HOPERAT',
  administration: 'HOPERAT',
  payment: 'HPAYMT',
};

const outcomes: Record<string, AuditEvent['outcome']> = { success: '0', denied: '4', failure: '8' };

export function toAuditEvent(row: AuditRecord): AuditEvent {
  const verb = verbs[row.action.slice(row.action.lastIndexOf('.') + 1)] ?? otherVerb;
  const entity: NonNullable<AuditEvent['entity']> = [];
  if (row.patientBlind) {
    entity.push({
      what: { identifier: { system: patientBlindSystem, value: row.patientBlind } },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
    });
  }
  if (row.entity) {
    entity.push({
      what: { identifier: { system: 'urn:secure-outreach:entity', value: row.entity } },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
    });
  }
  const purposeCode = row.purpose ? purposeCodes[row.purpose] : undefined;
  return {
    resourceType: 'AuditEvent',
    id: `audit-${row.seq}`,
    extension: [{ url: auditHashExtension, valueString: row.hash }],
    type: { system: dcm, ...verb.type },
    subtype: [{ system: 'urn:secure-outreach:audit-action', code: row.action }],
    action: verb.action,
    recorded: row.at.toISOString(),
    outcome: outcomes[row.outcome] ?? '8',
    ...(row.purpose
      ? {
          purposeOfEvent: [
            {
              coding: [
                ...(purposeCode ? [{ system: actReason, code: purposeCode }] : []),
                { system: 'urn:secure-outreach:purpose', code: row.purpose },
              ],
            },
          ],
        }
      : {}),
    agent: [
      {
        who: { identifier: { system: 'urn:secure-outreach:user', value: row.actor } },
        requestor: true,
        role: [{ coding: [{ system: 'urn:secure-outreach:role', code: row.role }] }],
      },
    ],
    source: {
      observer: { display: 'Secure Outreach connector' },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
    ...(entity.length ? { entity } : {}),
  };
}
