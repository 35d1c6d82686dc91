// Segment exports: a FHIR Group of Patient references by source id, and a list of CRM ids (ids only, no PHI).
import type { Group } from 'fhir/r4.js';

/** Maps internal patient ids to an external id (the source Patient id, or the CRM record id); unknown ids are absent. */
export type PatientIdResolver = (ids: readonly number[]) => Promise<Map<number, string>>;

export const segmentIdentifierSystem = 'urn:secure-outreach:segment';
const resolveBatch = 1000;

async function resolveAll(ids: readonly number[], resolve: PatientIdResolver): Promise<{ resolved: string[]; unresolved: number }> {
  const resolved: string[] = [];
  let unresolved = 0;
  for (let i = 0; i < ids.length; i += resolveBatch) {
    const batch = ids.slice(i, i + resolveBatch);
    const map = await resolve(batch);
    for (const id of batch) {
      const external = map.get(id);
      if (external === undefined) unresolved++;
      else resolved.push(external);
    }
  }
  return { resolved, unresolved };
}

export interface GroupExportInput {
  /** Member internal ids (ascending). */
  memberIds: readonly number[];
  /** The segment's name and version, when it is a saved one. */
  name?: string;
  version?: number;
  definitionHash: string;
  /** Internal id -> source Patient logical id. */
  resolvePatientIds: PatientIdResolver;
}

/** The segment as a FHIR R4 Group (type person, actual): one member per patient whose source id resolved. */
export async function segmentToFhirGroup(input: GroupExportInput): Promise<{ group: Group; unresolved: number }> {
  const { resolved, unresolved } = await resolveAll(input.memberIds, input.resolvePatientIds);
  const label = input.name ? `${input.name}${input.version ? ` v${input.version}` : ''}` : `segment ${input.definitionHash.slice(0, 12)}`;
  const group: Group = {
    resourceType: 'Group',
    identifier: [
      { system: segmentIdentifierSystem, value: input.name && input.version ? `${input.name}/v${input.version}` : input.definitionHash },
      { system: `${segmentIdentifierSystem}:definition-sha256`, value: input.definitionHash },
    ],
    active: true,
    type: 'person',
    actual: true,
    name: label,
    quantity: resolved.length,
    member: resolved.map((patientId) => ({ entity: { reference: `Patient/${patientId}` } })),
  };
  return { group, unresolved };
}

/** The segment as CRM record ids, in member order; patients without a CRM link are counted, not listed. */
export async function segmentToCrmIds(memberIds: readonly number[], resolveCrmIds: PatientIdResolver): Promise<{ crmIds: string[]; unresolved: number }> {
  const { resolved, unresolved } = await resolveAll(memberIds, resolveCrmIds);
  return { crmIds: resolved, unresolved };
}
