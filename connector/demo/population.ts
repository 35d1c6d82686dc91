// The demo EHR's generated patients: deterministic synthetic FHIR R4 resources with the traits the scenario segments on, and their ground truth.
import type { FhirResource as Resource } from 'fhir/r4.js';
import { writeConsent } from '../../fhir/consent.js';
import { seededRandom } from './seeded-random.js';

export interface PopulationOptions {
  patients: number;
  /** The same seed gives the same population. */
  seed?: number;
  /** The day the population is generated for (visit ages and A1C dates are relative to it). */
  now: Date;
  /** Receiving mail domains; patients are spread over them in turn. Use reserved test domains only. */
  mailDomains: readonly string[];
}

/** What the generator decided for one patient, computed without the connector: the demo test checks against it. */
export interface PatientTruth {
  id: string;
  email?: string;
  age: number;
  gender: 'male' | 'female';
  deceased: boolean;
  diabetic: boolean;
  /** The newest HbA1c value and its date. */
  latestA1c?: { value: number; date: string };
  /** The end of the newest finished encounter (ISO date). */
  lastVisit?: string;
  marketing: 'granted' | 'revoked' | 'none';
  payer: string;
}

export interface Population {
  resources: Resource[];
  truth: PatientTruth[];
}

const givenNames = {
  female: ['Avery', 'Marisol', 'Quinn', 'Tamsin', 'Odette', 'Linnea', 'Priya', 'Imogen', 'Noor', 'Sunniva', 'Beatrix', 'Ines'],
  male: ['Thaddeus', 'Rafferty', 'Caspian', 'Emrys', 'Lucan', 'Dorian', 'Anselm', 'Jovan', 'Tobiah', 'Ferris', 'Osric', 'Milo'],
};
const familyNames = ['Quillfeather', 'Ashgrove', 'Brambleton', 'Cinderby', 'Dunmore', 'Everhart', 'Foxwell', 'Galloway', 'Hollins', 'Ivesdale', 'Juniper', 'Kestrel', 'Larkspur', 'Merriweather'];
const cities = [
  ['Boston', 'MA', '021'], ['Worcester', 'MA', '016'], ['Springfield', 'MA', '011'], ['Providence', 'RI', '029'], ['Hartford', 'CT', '061'], ['Portland', 'ME', '041'],
] as const;
const payers = [
  ['payer-aetna', 'Aetna'], ['payer-bcbs', 'Blue Cross Blue Shield'], ['payer-medicare', 'Medicare'], ['payer-medicaid', 'Medicaid'], ['payer-humana', 'Humana'],
] as const;
const practitionerCount = 12;
const dayMs = 86_400_000;

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The practitioners and payer organisations every generated patient refers to. */
function sharedResources(): Resource[] {
  const out: Resource[] = [];
  for (let i = 0; i < practitionerCount; i++) {
    const gender = i % 2 ? 'male' : 'female';
    out.push({
      resourceType: 'Practitioner',
      id: `demo-dr-${i}`,
      identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: String(1_990_000_000 + i) }],
      name: [{ family: familyNames[(i * 5) % familyNames.length]!, given: [givenNames[gender][(i * 7) % 12]!], prefix: ['Dr.'] }],
      gender,
    });
  }
  for (const [id, name] of payers) out.push({ resourceType: 'Organization', id, name, type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'ins' }] }] });
  return out;
}

export function generatePopulation(options: PopulationOptions): Population {
  const rand = seededRandom(options.seed ?? 20261123);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const now = options.now.getTime();
  const resources = sharedResources();
  const truth: PatientTruth[] = [];
  for (let n = 0; n < options.patients; n++) {
    const id = `demo-${String(n).padStart(5, '0')}`;
    const subject = { reference: `Patient/${id}` };
    const gender = rand() < 0.5 ? 'female' : 'male';
    const age = 25 + Math.floor(rand() * 60);
    const birth = isoDay(now - (age * 365.25 + 30 + rand() * 300) * dayMs);
    const given = pick(givenNames[gender]);
    const family = pick(familyNames);
    const [city, state, zip] = pick(cities);
    const deceased = rand() < 0.02;
    const domain = options.mailDomains[n % options.mailDomains.length]!;
    const email = rand() < 0.05 ? undefined : `${given}.${family}.${n}@${domain}`.toLowerCase();
    const pcp = `demo-dr-${n % practitionerCount}`;
    resources.push({
      resourceType: 'Patient',
      id,
      identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, system: 'urn:demo-ehr:mrn', value: `D${100000 + n}` }],
      name: [{ use: 'official', family, given: [given] }],
      gender,
      birthDate: birth,
      ...(deceased ? { deceasedDateTime: `${isoDay(now - 40 * dayMs)}T09:00:00Z` } : {}),
      telecom: [{ system: 'phone', value: `555-01${String(n % 100).padStart(2, '0')}`, use: 'home' }, ...(email ? [{ system: 'email' as const, value: email }] : [])],
      address: [{ line: [`${10 + (n % 890)} Elm Street`], city, state, postalCode: `${zip}${String(n % 100).padStart(2, '0')}`, country: 'US' }],
      communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: rand() < 0.15 ? 'es' : 'en-US' }] }, preferred: true }],
      generalPractitioner: [{ reference: `Practitioner/${pcp}` }],
    });

    // Visits: 1-4 finished encounters; a third of the patients have not been seen in over a year.
    const overdue = rand() < 0.35;
    let lastVisit: string | undefined;
    const visits = 1 + Math.floor(rand() * 4);
    for (let v = 0; v < visits; v++) {
      const daysAgo = overdue ? 400 + Math.floor(rand() * 900) : 10 + Math.floor(rand() * 330);
      const start = `${isoDay(now - daysAgo * dayMs)}T14:00:00Z`;
      if (!lastVisit || start.slice(0, 10) > lastVisit) lastVisit = start.slice(0, 10);
      resources.push({
        resourceType: 'Encounter',
        id: `${id}-enc-${v}`,
        status: 'finished',
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
        type: [{ coding: [{ system: 'http://snomed.info/sct', code: '185349003', display: 'Encounter for check up' }] }],
        subject,
        period: { start, end: start },
        participant: [{ individual: { reference: `Practitioner/${pcp}` } }],
      });
    }

    // Diabetes for about a third; their A1C history (the newest value decides the segment).
    const diabetic = rand() < 0.33;
    let latestA1c: PatientTruth['latestA1c'];
    if (diabetic) {
      resources.push({
        resourceType: 'Condition',
        id: `${id}-dm2`,
        clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
        code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006', display: 'Diabetes mellitus type 2' }] },
        subject,
        onsetDateTime: `${isoDay(now - (400 + Math.floor(rand() * 3000)) * dayMs)}T00:00:00Z`,
      });
      const readings = 1 + Math.floor(rand() * 3);
      for (let r = 0; r < readings; r++) {
        const value = Math.round((6 + rand() * 6) * 10) / 10;
        const date = isoDay(now - (30 + r * 120 + Math.floor(rand() * 60)) * dayMs);
        if (!latestA1c || date > latestA1c.date) latestA1c = { value, date };
        resources.push({
          resourceType: 'Observation',
          id: `${id}-a1c-${r}`,
          status: 'final',
          category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
          code: { coding: [{ system: 'http://loinc.org', code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood' }] },
          subject,
          effectiveDateTime: `${date}T08:30:00Z`,
          valueQuantity: { value, unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
        });
      }
    } else if (rand() < 0.3) {
      resources.push({
        resourceType: 'Condition',
        id: `${id}-htn`,
        clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
        code: { coding: [{ system: 'http://snomed.info/sct', code: '38341003', display: 'Hypertension' }] },
        subject,
      });
    }

    const [payerId, payer] = pick(payers);
    resources.push({
      resourceType: 'Coverage',
      id: `${id}-cov`,
      status: 'active',
      beneficiary: subject,
      payor: [{ reference: `Organization/${payerId}`, display: payer }],
      period: { start: isoDay(now - 800 * dayMs) },
    });

    // Marketing authorizations: most granted, some revoked, some never asked.
    const roll = rand();
    const marketing: PatientTruth['marketing'] = roll < 0.7 ? 'granted' : roll < 0.8 ? 'revoked' : 'none';
    if (marketing !== 'none') {
      const grantedAt = `${isoDay(now - 200 * dayMs)}T10:00:00Z`;
      resources.push({
        ...writeConsent({
          id: `${id}-mkt`,
          patient: subject,
          purpose: 'marketing',
          channel: 'email',
          status: marketing === 'granted' ? 'active' : 'revoked',
          grantedAt,
          expiresAt: `${isoDay(now + 500 * dayMs)}T00:00:00Z`,
          textVersion: 'hipaa-marketing-v3',
          recordedAt: grantedAt,
          source: 'signed-form',
        }),
      });
    }
    truth.push({ id, ...(email ? { email } : {}), age, gender, deceased, diabetic, ...(latestA1c ? { latestA1c } : {}), ...(lastVisit ? { lastVisit } : {}), marketing, payer });
  }
  return { resources, truth };
}
