// The demo population: the same seed gives the same patients, and the ground truth the demo test relies on agrees with the FHIR resources it was generated with.
import type { Condition, Consent, Encounter, Observation, Patient } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { generatePopulation } from '../../../connector/demo/population.js';

const options = { patients: 600, seed: 77, now: new Date('2026-06-01T00:00:00Z'), mailDomains: ['tls.example.test', 'plain.example.test'] };

describe('demo population', () => {
  it('is deterministic for a seed and differs for another', () => {
    const a = generatePopulation(options);
    expect(JSON.stringify(generatePopulation(options))).toBe(JSON.stringify(a));
    expect(JSON.stringify(generatePopulation({ ...options, seed: 78 }).truth)).not.toBe(JSON.stringify(a.truth));
  });

  it('states in its ground truth exactly what its resources say', () => {
    const { resources, truth } = generatePopulation(options);
    expect(truth).toHaveLength(options.patients);
    const byPatient = new Map<string, typeof resources>();
    for (const r of resources) {
      const ref = /"Patient\/([^"]+)"/.exec(JSON.stringify(r))?.[1];
      if (ref) byPatient.set(ref, [...(byPatient.get(ref) ?? []), r]);
    }
    const of = <T>(type: string, id: string) => (byPatient.get(id) ?? []).filter((r) => r.resourceType === type) as T[];
    for (const t of truth) {
      const patient = resources.find((r): r is Patient => r.resourceType === 'Patient' && r.id === t.id)!;
      expect(patient.telecom?.find((x) => x.system === 'email')?.value).toBe(t.email);
      expect(Boolean(patient.deceasedDateTime)).toBe(t.deceased);
      expect(patient.gender).toBe(t.gender);
      expect(t.email === undefined || options.mailDomains.some((d) => t.email!.endsWith(`@${d}`))).toBe(true);
      const diabetes = of<Condition>('Condition', t.id).filter((c) => c.code?.coding?.[0]?.code === '44054006');
      expect(diabetes.length > 0).toBe(t.diabetic);
      const a1c = of<Observation>('Observation', t.id).sort((x, y) => String(y.effectiveDateTime).localeCompare(String(x.effectiveDateTime)))[0];
      expect(a1c ? { value: a1c.valueQuantity!.value, date: a1c.effectiveDateTime!.slice(0, 10) } : undefined).toEqual(t.latestA1c);
      const last = of<Encounter>('Encounter', t.id).map((e) => e.period!.start!.slice(0, 10)).sort().at(-1);
      expect(last).toBe(t.lastVisit);
      const consent = of<Consent>('Consent', t.id)[0];
      // A revocation is an active Consent whose provision denies (fhir/consent.ts writes it so).
      expect(consent ? (JSON.stringify(consent.provision).includes('"type":"deny"') ? 'revoked' : 'granted') : 'none').toBe(t.marketing);
    }
    // Every trait the demo segments and excludes on is represented.
    const members = truth.filter((t) => t.diabetic && (t.latestA1c?.value ?? 0) > 9 && Date.parse(t.lastVisit!) < options.now.getTime() - 365 * 86_400_000);
    expect(members.length).toBeGreaterThan(10);
    expect(new Set(truth.map((t) => t.marketing))).toEqual(new Set(['granted', 'revoked', 'none']));
    expect(truth.some((t) => t.deceased) && truth.some((t) => !t.email)).toBe(true);
  });
});
