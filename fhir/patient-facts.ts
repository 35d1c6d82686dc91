// Patient facts: the flat, segmentable view of one patient that the FHIR layer derives and the store seals.
import type { Phi } from './phi.js';

/** A coding reduced to what segments match on. `display` is PHI-adjacent text: never log it. */
export interface CodeRef {
  system: string;
  code: string;
  display?: string;
}

export type Gender = 'male' | 'female' | 'other' | 'unknown';

export interface ConditionFact {
  /** The source resource id: an incremental sync replaces the entry with the same id. */
  id?: string;
  codes: CodeRef[];
  /** active | recurrence | relapse | inactive | remission | resolved (absent when the source has none). */
  clinicalStatus?: string;
  onset?: string;
  abatement?: string;
}

export interface ObservationFact {
  id?: string;
  loinc: string;
  value: number;
  unit?: string;
  /** effectiveDateTime or issued, ISO. */
  date: string;
}

export interface CoverageFact {
  /** The Coverage id, or `payer:<name>` for coverage read from claims (one entry per payer). */
  id?: string;
  payer?: string;
  /** Coverage.type or the claim's insurance coverage display/code. */
  type?: CodeRef;
  active: boolean;
  start?: string;
  end?: string;
  source: 'Coverage' | 'Claim' | 'ExplanationOfBenefit';
}

export interface ProcedureFact {
  id?: string;
  codes: CodeRef[];
  date?: string;
}

export interface MedicationFact {
  id?: string;
  codes: CodeRef[];
  status?: string;
  authoredOn?: string;
  /** From dispenseRequest: quantity, expected supply duration in days, and refills allowed. */
  quantity?: number;
  supplyDays?: number;
  refills?: number;
}

export interface AppointmentFact {
  id: string;
  status: string;
  start?: string;
  end?: string;
  practitioner?: string;
  types: CodeRef[];
}

export interface EncounterFact {
  id?: string;
  /** period.start (else period.end), ISO. */
  date: string;
  /** period.end, ISO: breaks ties between visits that started together. */
  end?: string;
  status?: string;
  types: CodeRef[];
  reasons: CodeRef[];
  class?: string;
  /** The practitioner's name when known (else the reference's display). */
  practitioner?: string;
}

export interface PractitionerRef {
  /** `Practitioner/<id>` or an identifier reference (`Practitioner?identifier=system|value`). */
  reference: string;
  name?: string;
  npi?: string;
  source: 'generalPractitioner' | 'encounters';
}

/** Everything marketers segment on and merge tags read, for one patient. The whole object is PHI. */
export interface PatientFacts {
  /** The patient's logical id at its source EHR. */
  patientId: string;
  /** The endpoint name the facts came from. */
  source: string;
  mrn?: Phi<string>;
  given?: Phi<string>;
  family?: Phi<string>;
  gender?: Gender;
  birthDate?: Phi<string>;
  deceased: boolean;
  deceasedDate?: string;
  city?: Phi<string>;
  state?: string;
  postalCode?: Phi<string>;
  country?: string;
  email?: Phi<string>;
  /** True when the email was generated for demo data (reserved test domain), not given by the patient. */
  emailSynthetic?: boolean;
  phone?: Phi<string>;
  /** BCP-47 tag of the preferred communication language. */
  language?: string;
  pcp?: PractitionerRef;
  /** Most recent finished encounter. */
  lastVisit?: EncounterFact;
  /** The most recent encounters (newest first, at most 20), for follow-up triggers. */
  encounters: EncounterFact[];
  conditions: ConditionFact[];
  /** Latest value per LOINC code. */
  observations: ObservationFact[];
  /** Latest HbA1c (LOINC 4548-4), duplicated from `observations` for merge tags and the hot segment path. */
  a1c?: ObservationFact;
  coverage: CoverageFact[];
  procedures: ProcedureFact[];
  medications: MedicationFact[];
  appointments: AppointmentFact[];
  /** meta.lastUpdated of the newest resource that contributed. */
  updatedAt?: string;
  /**
   * Fold state for the PCP fallback: encounter id -> practitioner reference of every encounter seen, so an
   * incremental sync can recount the most frequent practitioner without re-reading old encounters.
   */
  encounterPractitioners?: Record<string, string>;
}
