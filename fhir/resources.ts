// Zod schemas of the R4 subset the connector reads: only the fields facts use are checked, the rest passes through.
import { z } from 'zod';
import type { QuarantineItem } from './facts-sink.js';

// Primitive formats from the R4 specification (datatypes.html), checked without looking at more than the field.
const id = z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/);
const date = z.string().regex(/^\d{4}(-\d{2}(-\d{2})?)?$/);
const dateTime = z.string().regex(/^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/);
const instant = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
const code = z.string().regex(/^\S+( \S+)*$/);

const coding = z.object({ system: z.string().optional(), code: z.string().optional(), display: z.string().optional() });
const codeableConcept = z.object({ coding: z.array(coding).optional(), text: z.string().optional() });
const identifier = z.object({ system: z.string().optional(), value: z.string().optional(), type: codeableConcept.optional() });
const reference = z.object({ reference: z.string().optional(), display: z.string().optional(), identifier: identifier.optional() });
const period = z.object({ start: dateTime.optional(), end: dateTime.optional() });
const quantity = z.object({ value: z.number().optional(), unit: z.string().optional(), code: z.string().optional() });
const humanName = z.object({ use: z.string().optional(), family: z.string().optional(), given: z.array(z.string()).optional(), prefix: z.array(z.string()).optional() });
const contactPoint = z.object({ system: z.string().optional(), value: z.string().optional(), use: z.string().optional(), rank: z.number().int().positive().optional(), period: period.optional() });
const address = z.object({ use: z.string().optional(), city: z.string().optional(), state: z.string().optional(), postalCode: z.string().optional(), country: z.string().optional(), period: period.optional() });
const meta = z.object({ lastUpdated: instant.optional() });

const base = <T extends string>(resourceType: T) => ({ resourceType: z.literal(resourceType), id: id.optional(), meta: meta.optional() });

export const PatientSchema = z.object({
  ...base('Patient'),
  identifier: z.array(identifier).optional(),
  name: z.array(humanName).optional(),
  telecom: z.array(contactPoint).optional(),
  gender: z.enum(['male', 'female', 'other', 'unknown']).optional(),
  birthDate: date.optional(),
  deceasedBoolean: z.boolean().optional(),
  deceasedDateTime: dateTime.optional(),
  address: z.array(address).optional(),
  communication: z.array(z.object({ language: codeableConcept, preferred: z.boolean().optional() })).optional(),
  generalPractitioner: z.array(reference).optional(),
});

export const ConditionSchema = z.object({
  ...base('Condition'),
  subject: reference,
  code: codeableConcept.optional(),
  clinicalStatus: codeableConcept.optional(),
  onsetDateTime: dateTime.optional(),
  onsetPeriod: period.optional(),
  abatementDateTime: dateTime.optional(),
  recordedDate: dateTime.optional(),
});

export const EncounterSchema = z.object({
  ...base('Encounter'),
  status: code,
  class: coding.optional(),
  type: z.array(codeableConcept).optional(),
  subject: reference.optional(),
  participant: z.array(z.object({ individual: reference.optional(), type: z.array(codeableConcept).optional() })).optional(),
  period: period.optional(),
  reasonCode: z.array(codeableConcept).optional(),
});

export const ObservationSchema = z.object({
  ...base('Observation'),
  status: code,
  code: codeableConcept,
  subject: reference.optional(),
  effectiveDateTime: dateTime.optional(),
  effectivePeriod: period.optional(),
  issued: instant.optional(),
  valueQuantity: quantity.optional(),
});

export const CoverageSchema = z.object({
  ...base('Coverage'),
  status: code,
  type: codeableConcept.optional(),
  beneficiary: reference,
  payor: z.array(reference).optional(),
  period: period.optional(),
});

export const ConsentSchema = z.object({
  ...base('Consent'),
  status: code,
  scope: codeableConcept,
  category: z.array(codeableConcept).min(1),
  patient: reference.optional(),
  dateTime: dateTime.optional(),
});

export const PractitionerSchema = z.object({
  ...base('Practitioner'),
  identifier: z.array(identifier).optional(),
  name: z.array(humanName).optional(),
});

export const OrganizationSchema = z.object({
  ...base('Organization'),
  identifier: z.array(identifier).optional(),
  name: z.string().optional(),
});

export const AppointmentSchema = z.object({
  ...base('Appointment'),
  status: code,
  serviceType: z.array(codeableConcept).optional(),
  appointmentType: codeableConcept.optional(),
  start: instant.optional(),
  end: instant.optional(),
  participant: z.array(z.object({ actor: reference.optional(), status: code })).min(1),
});

export const MedicationRequestSchema = z.object({
  ...base('MedicationRequest'),
  status: code,
  intent: code,
  subject: reference,
  medicationCodeableConcept: codeableConcept.optional(),
  medicationReference: reference.optional(),
  authoredOn: dateTime.optional(),
  dispenseRequest: z
    .looseObject({
      numberOfRepeatsAllowed: z.number().int().nonnegative().optional(),
      quantity: quantity.optional(),
      expectedSupplyDuration: quantity.optional(),
    })
    .optional(),
});

export const ProcedureSchema = z.object({
  ...base('Procedure'),
  status: code,
  code: codeableConcept.optional(),
  subject: reference,
  performedDateTime: dateTime.optional(),
  performedPeriod: period.optional(),
});

const insurance = z.object({ focal: z.boolean().optional(), coverage: reference });
// A contained Coverage (Synthea puts the plan type there) is read for its type and payor only.
const contained = z.array(z.object({ resourceType: z.string(), id: z.string().optional() })).optional();

export const ClaimSchema = z.object({
  ...base('Claim'),
  status: code,
  patient: reference,
  created: dateTime.optional(),
  billablePeriod: period.optional(),
  insurer: reference.optional(),
  insurance: z.array(insurance).optional(),
  contained,
});

export const ExplanationOfBenefitSchema = z.object({
  ...base('ExplanationOfBenefit'),
  status: code,
  patient: reference,
  created: dateTime.optional(),
  billablePeriod: period.optional(),
  insurer: reference.optional(),
  insurance: z.array(insurance).optional(),
  contained,
});

export const resourceSchemas = {
  Patient: PatientSchema,
  Condition: ConditionSchema,
  Encounter: EncounterSchema,
  Observation: ObservationSchema,
  Coverage: CoverageSchema,
  Consent: ConsentSchema,
  Practitioner: PractitionerSchema,
  Organization: OrganizationSchema,
  Appointment: AppointmentSchema,
  MedicationRequest: MedicationRequestSchema,
  Procedure: ProcedureSchema,
  Claim: ClaimSchema,
  ExplanationOfBenefit: ExplanationOfBenefitSchema,
} as const;

export type ReadResourceType = keyof typeof resourceSchemas;
export const readResourceTypes = Object.keys(resourceSchemas) as ReadResourceType[];

export type PatientResource = z.infer<typeof PatientSchema>;
export type ConditionResource = z.infer<typeof ConditionSchema>;
export type EncounterResource = z.infer<typeof EncounterSchema>;
export type ObservationResource = z.infer<typeof ObservationSchema>;
export type CoverageResource = z.infer<typeof CoverageSchema>;
export type ConsentResource = z.infer<typeof ConsentSchema>;
export type PractitionerResource = z.infer<typeof PractitionerSchema>;
export type OrganizationResource = z.infer<typeof OrganizationSchema>;
export type AppointmentResource = z.infer<typeof AppointmentSchema>;
export type MedicationRequestResource = z.infer<typeof MedicationRequestSchema>;
export type ProcedureResource = z.infer<typeof ProcedureSchema>;
export type ClaimResource = z.infer<typeof ClaimSchema>;
export type ExplanationOfBenefitResource = z.infer<typeof ExplanationOfBenefitSchema>;
export type CodeableConcept = z.infer<typeof codeableConcept>;
export type Reference = z.infer<typeof reference>;

/** A validated resource of the subset, discriminated by resourceType. */
export type ReadResource = { [K in ReadResourceType]: z.infer<(typeof resourceSchemas)[K]> }[ReadResourceType];

export type Validation =
  | { ok: true; resource: ReadResource }
  /** A type outside the subset: nothing to validate, nothing to derive. */
  | { ok: 'skipped'; resourceType: string; id?: string }
  | { ok: false; issue: Omit<QuarantineItem, 'endpoint' | 'at' | 'file' | 'line'> };

const idOf = (input: Record<string, unknown>) => (typeof input.id === 'string' && input.id.length <= 64 ? input.id : undefined);

/**
 * Validates a parsed resource of the subset. A failure names the resource type, id, the failing path and the
 * kind of failure, never the value found there.
 */
export function validateResource(input: unknown): Validation {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, issue: { path: '(resource)', reason: 'not a JSON object' } };
  }
  const obj = input as Record<string, unknown>;
  const type = obj.resourceType;
  if (typeof type !== 'string' || !/^[A-Z][A-Za-z]{1,63}$/.test(type)) {
    return { ok: false, issue: { resourceId: idOf(obj), path: 'resourceType', reason: 'missing or not a resource type' } };
  }
  const schema = (resourceSchemas as Record<string, z.ZodType>)[type];
  if (!schema) return { ok: 'skipped', resourceType: type, id: idOf(obj) };
  // The schemas check the fields facts read and ignore the rest; the resource handed on is the input itself, so
  // every field passes through untouched and nothing is copied (copying dominated the ingest cost).
  const parsed = schema.safeParse(input);
  if (parsed.success) return { ok: true, resource: input as ReadResource };
  const issue = parsed.error.issues[0]!;
  return {
    ok: false,
    issue: { resourceType: type, resourceId: idOf(obj), path: [type, ...issue.path.map(String)].join('.'), reason: reasonOf(issue) },
  };
}

/** A value-free description of a zod issue (zod's own messages may quote the input). */
function reasonOf(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'invalid_value':
      return 'not one of the allowed values';
    case 'invalid_format':
      return `not a valid ${fhirFormatName(issue)}`;
    case 'too_small':
      return `fewer than ${String(issue.minimum)} items or characters`;
    case 'too_big':
      return `more than ${String(issue.maximum)} items or characters`;
    case 'unrecognized_keys':
      return 'unexpected keys';
    default:
      return issue.code;
  }
}

function fhirFormatName(issue: z.core.$ZodIssue): string {
  const last = issue.path[issue.path.length - 1];
  const field = typeof last === 'string' ? last : '';
  if (field === 'id') return 'FHIR id';
  if (field === 'birthDate') return 'FHIR date';
  if (field === 'lastUpdated' || field === 'issued' || field === 'start' || field === 'end') return 'FHIR instant or dateTime';
  if (/date|Date|onset|abatement|authoredOn|created|performed|effective/.test(field)) return 'FHIR dateTime';
  return 'FHIR code or format';
}
