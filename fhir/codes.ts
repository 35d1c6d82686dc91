// The code systems, codes and extension URLs the FHIR layer reads, named once.

export const system = {
  loinc: 'http://loinc.org',
  snomed: 'http://snomed.info/sct',
  rxnorm: 'http://www.nlm.nih.gov/research/umls/rxnorm',
  icd10: 'http://hl7.org/fhir/sid/icd-10-cm',
  npi: 'http://hl7.org/fhir/sid/us-npi',
  bcp47: 'urn:ietf:bcp:47',
  v2IdentifierType: 'http://terminology.hl7.org/CodeSystem/v2-0203',
  conditionClinical: 'http://terminology.hl7.org/CodeSystem/condition-clinical',
  actCode: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
} as const;

export const loinc = {
  /** Hemoglobin A1c/Hemoglobin.total in Blood. */
  hba1c: '4548-4',
} as const;

/** Identifier.type code of a medical record number (v2-0203). */
export const mrnTypeCode = 'MR';

/** SMART's CapabilityStatement extension listing the OAuth endpoints (fallback of .well-known discovery). */
export const smartOauthUrisExtension = 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris';

export const clientAssertionType = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Encounter statuses that mean the visit happened. */
export const finishedEncounterStatuses: ReadonlySet<string> = new Set(['finished']);

/** Appointment statuses that still lead to a visit. */
export const upcomingAppointmentStatuses: ReadonlySet<string> = new Set([
  'proposed', 'pending', 'booked', 'arrived', 'checked-in', 'waitlist',
]);

/** US state and territory names to their USPS codes, so segments match `state = MA` whatever the source wrote. */
export const usStateCodes: Readonly<Record<string, string>> = {
  alabama: 'AL', alaska: 'AK', arizona: 'AZ', arkansas: 'AR', california: 'CA', colorado: 'CO', connecticut: 'CT',
  delaware: 'DE', 'district of columbia': 'DC', florida: 'FL', georgia: 'GA', hawaii: 'HI', idaho: 'ID', illinois: 'IL',
  indiana: 'IN', iowa: 'IA', kansas: 'KS', kentucky: 'KY', louisiana: 'LA', maine: 'ME', maryland: 'MD',
  massachusetts: 'MA', michigan: 'MI', minnesota: 'MN', mississippi: 'MS', missouri: 'MO', montana: 'MT',
  nebraska: 'NE', nevada: 'NV', 'new hampshire': 'NH', 'new jersey': 'NJ', 'new mexico': 'NM', 'new york': 'NY',
  'north carolina': 'NC', 'north dakota': 'ND', ohio: 'OH', oklahoma: 'OK', oregon: 'OR', pennsylvania: 'PA',
  'rhode island': 'RI', 'south carolina': 'SC', 'south dakota': 'SD', tennessee: 'TN', texas: 'TX', utah: 'UT',
  vermont: 'VT', virginia: 'VA', washington: 'WA', 'west virginia': 'WV', wisconsin: 'WI', wyoming: 'WY',
  'puerto rico': 'PR', guam: 'GU', 'virgin islands': 'VI', 'american samoa': 'AS', 'northern mariana islands': 'MP',
};

/** A state as its USPS code when it is a US state name or code; other values pass unchanged. */
export function normaliseState(state: string): string {
  const trimmed = state.trim();
  if (/^[A-Za-z]{2}$/.test(trimmed)) return trimmed.toUpperCase();
  return usStateCodes[trimmed.toLowerCase()] ?? trimmed;
}
