// Named clinical value sets a segment can test against (SNOMED CT and ICD-10 codes); pure, shared with the extension.

export const snomed = 'http://snomed.info/sct';
export const icd10cm = 'http://hl7.org/fhir/sid/icd-10-cm';
export const icd10 = 'http://hl7.org/fhir/sid/icd-10';
export const rxnorm = 'http://www.nlm.nih.gov/research/umls/rxnorm';

/** One member rule: an exact code, or (for ICD-10 categories) every code that starts with `prefix`. */
export type ValueSetEntry = { system: string; code: string } | { system: string; prefix: string };

export interface ValueSet {
  title: string;
  entries: readonly ValueSetEntry[];
}

/** ICD-10 category prefixes hold in both the CM and the WHO edition. */
const icd = (...prefixes: string[]): ValueSetEntry[] =>
  prefixes.flatMap((prefix) => [
    { system: icd10cm, prefix },
    { system: icd10, prefix },
  ]);
const sct = (...codes: string[]): ValueSetEntry[] => codes.map((code) => ({ system: snomed, code }));

export const valueSets = {
  diabetes: {
    title: 'Diabetes mellitus (type 1, type 2, other specified) and its complications',
    entries: [
      // Diabetes mellitus; type 1; type 2; diabetic renal disease; diabetic retinopathy and neuropathy due to type 2;
      // microalbuminuria and proteinuria due to type 2 (the codes Synthea emits).
      ...sct('73211009', '46635009', '44054006', '127013003', '422034002', '368581000119106', '90781000119102', '157141000119108'),
      ...icd('E08', 'E09', 'E10', 'E11', 'E13'),
    ],
  },
  prediabetes: {
    title: 'Prediabetes',
    entries: [...sct('15777000', '714628002'), ...icd('R73.03')],
  },
  hypertension: {
    title: 'Hypertension (essential and secondary, hypertensive heart and kidney disease)',
    entries: [...sct('38341003', '59621000', '31992008'), ...icd('I10', 'I11', 'I12', 'I13', 'I15', 'I16')],
  },
  asthma: {
    title: 'Asthma',
    entries: [...sct('195967001', '233678006', '424643009', '426656000', '427295004'), ...icd('J45')],
  },
  ckd: {
    title: 'Chronic kidney disease (stages 1-5 and end stage)',
    entries: [
      ...sct('709044004', '431855005', '431856006', '433144002', '431857002', '433146000', '46177005'),
      ...icd('N18'),
    ],
  },
  copd: {
    title: 'Chronic obstructive pulmonary disease',
    entries: [...sct('13645005', '185086009', '87433001'), ...icd('J44')],
  },
} as const satisfies Record<string, ValueSet>;

export type ValueSetName = keyof typeof valueSets;
export const valueSetNames = Object.keys(valueSets) as [ValueSetName, ...ValueSetName[]];

/** True when (system, code) belongs to the value set. ICD-10 codes match with or without the dot. */
export function inValueSet(name: ValueSetName, system: string, code: string): boolean {
  const entries: readonly ValueSetEntry[] = valueSets[name].entries;
  for (const e of entries) {
    if (e.system !== system) continue;
    if ('code' in e ? e.code === code : code.startsWith(e.prefix) || code.replace('.', '').startsWith(e.prefix.replace('.', ''))) {
      return true;
    }
  }
  return false;
}
