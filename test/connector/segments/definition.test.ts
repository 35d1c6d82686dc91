// The segment definition language: what it accepts, the path it names when it refuses, its limits and its hash.
import { describe, expect, it } from 'vitest';
import { checkSegmentDefinition, canonicalJson, parseSegmentDefinition, segmentLimits, walkSegment } from '../../../connector/segments/definition.js';
import { definitionHash } from '../../../connector/segments/definition-hash.js';
import { describeSegmentNode } from '../../../connector/segments/segment-description.js';
import { icd10, icd10cm, inValueSet, snomed } from '../../../connector/segments/value-sets.js';

const refusal = (raw: unknown) => {
  const r = checkSegmentDefinition(raw);
  return r.ok ? undefined : { code: r.code, path: r.path, message: r.message };
};

describe('segment definitions', () => {
  it('accepts every predicate and normalises single values to lists', () => {
    const parsed = parseSegmentDefinition({
      all: [
        { type: 'gender', value: 'female' },
        { type: 'age', min: 40, max: 75 },
        { type: 'state', value: ['MA', 'NY'] },
        { type: 'city', value: 'Boston' },
        { type: 'postalCode', prefix: '021' },
        { type: 'pcp', value: 'Practitioner/1' },
        { type: 'lastVisit', before: '2026-01-01', after: '2020-01-01', withinDays: 365 },
        { type: 'lastVisitReason', valueSet: 'hypertension' },
        { type: 'condition', system: 'http://snomed.info/sct', code: '44054006', status: 'active' },
        { type: 'hba1c', op: '>', value: 9, withinDays: 180 },
        { type: 'observation', loinc: '2339-0', op: '<=', value: 70 },
        { type: 'coverage', payer: 'Medicare', coverageType: 'HMO', active: true },
        { type: 'procedure', code: ['73761001'], withinDays: 3650 },
        { type: 'medication', valueSet: 'diabetes' },
        { type: 'appointment', withinDays: 14 },
        { type: 'authorized', purpose: 'marketing' },
        { any: [{ type: 'notSuppressed' }, { not: { type: 'gender', value: ['male', 'other'] } }] },
      ],
    });
    expect([...walkSegment(parsed)]).toHaveLength(21);
    expect((parsed as { all: Array<Record<string, unknown>> }).all[0]).toEqual({ type: 'gender', value: ['female'] });
    expect((parsed as { all: Array<Record<string, unknown>> }).all[13]).toEqual({ type: 'medication', valueSet: 'diabetes' });
    expect(parseSegmentDefinition({ type: 'condition', valueSet: 'asthma' })).toEqual({ type: 'condition', valueSet: 'asthma', status: 'ever' });
  });

  it.each([
    [{ all: [{ type: 'age', min: 40 }, { type: 'age', max: 75 }, { any: [{ type: 'gender', value: 'x' }] }] }, 'all[2].any[0].value[0]', /expected one of/],
    [{ all: [{ type: 'hba1c', op: '>', value: '9' }] }, 'all[0].value', /expected number/],
    [{ all: [{ type: 'hba1c', op: '=>', value: 9 }] }, 'all[0].op', /expected one of/],
    [{ any: [{ type: 'unknown' }] }, 'any[0].type', /Invalid discriminator/],
    [{ not: { type: 'condition' } }, 'not.code', /give code or valueSet/],
    [{ type: 'condition', valueSet: 'gout' }, 'valueSet', /expected one of/],
    [{ type: 'age', min: 80, max: 30 }, 'max', /min is above max/],
    [{ type: 'age' }, 'min', /give min or max/],
    [{ type: 'lastVisit', before: '2020-02-30' }, 'before', /not a calendar date/],
    [{ type: 'lastVisit' }, 'withinDays', /give before, after or withinDays/],
    [{ type: 'observation', loinc: 'glucose', op: '>', value: 1 }, 'loinc', /LOINC/],
    [{ type: 'authorized', purpose: 'Marketing!' }, 'purpose', /purpose/],
    [{ type: 'gender', value: 'female', extra: true }, '(root)', /Unrecognized key/],
    [{ all: [] }, 'all', /too small|>=1/i],
    ['gender=female', '(root)', /expected object/],
  ])('refuses %j naming the path %s', (raw, path, message) => {
    const r = refusal(raw);
    expect(r).toMatchObject({ code: 'SEGMENT_INVALID', path });
    expect(r!.message).toMatch(message);
    expect(() => parseSegmentDefinition(raw)).toThrow(expect.objectContaining({ code: 'SEGMENT_INVALID', status: 400, details: { field: path } }));
  });

  it('refuses a definition nested too deep or too large with SEGMENT_TOO_COMPLEX, before validating it', () => {
    let deep: unknown = { type: 'notSuppressed' };
    for (let i = 0; i < 10_000; i++) deep = { not: deep };
    expect(refusal(deep)).toMatchObject({ code: 'SEGMENT_TOO_COMPLEX', path: 'not.not.not.not.not.not.not.not.not' });
    const wide = { any: Array.from({ length: segmentLimits.maxNodes + 5 }, () => ({ type: 'notSuppressed' })) };
    expect(refusal(wide)).toMatchObject({ code: 'SEGMENT_TOO_COMPLEX', path: `any[${segmentLimits.maxNodes - 1}]` });
    let atLimit: unknown = { type: 'notSuppressed' };
    for (let i = 0; i < segmentLimits.maxDepth; i++) atLimit = { not: atLimit };
    expect(checkSegmentDefinition(atLimit).ok).toBe(true);
    const longList = { type: 'state', value: Array.from({ length: segmentLimits.maxListLength + 1 }, () => 'MA') };
    expect(refusal(longList)).toMatchObject({ code: 'SEGMENT_INVALID', path: 'value' });
  });

  it('hashes the canonical JSON, so key order and single-vs-list spelling do not change the hash', () => {
    const a = parseSegmentDefinition({ all: [{ type: 'gender', value: 'female' }, { type: 'age', min: 40, max: 75 }] });
    const b = parseSegmentDefinition({ all: [{ value: ['female'], type: 'gender' }, { max: 75, type: 'age', min: 40 }] });
    const c = parseSegmentDefinition({ all: [{ type: 'age', min: 40, max: 75 }, { type: 'gender', value: 'female' }] });
    expect(canonicalJson(a)).toBe('{"all":[{"type":"gender","value":["female"]},{"max":75,"min":40,"type":"age"}]}');
    expect(definitionHash(a)).toBe(definitionHash(b));
    expect(definitionHash(a)).toMatch(/^[0-9a-f]{64}$/);
    // Order inside `all` is part of what was approved (explain reads in that order).
    expect(definitionHash(a)).not.toBe(definitionHash(c));
  });

  it('matches value sets by SNOMED code and by ICD-10 category, with or without the dot', () => {
    expect(inValueSet('diabetes', snomed, '44054006')).toBe(true);
    expect(inValueSet('diabetes', icd10cm, 'E11.9')).toBe(true);
    expect(inValueSet('diabetes', icd10, 'E119')).toBe(true);
    expect(inValueSet('diabetes', icd10cm, 'E16.2')).toBe(false);
    expect(inValueSet('diabetes', snomed, '15777000')).toBe(false);
    expect(inValueSet('prediabetes', icd10cm, 'R7303')).toBe(true);
    expect(inValueSet('hypertension', icd10cm, 'I10')).toBe(true);
    expect(inValueSet('ckd', icd10cm, 'N18.3')).toBe(true);
    expect(inValueSet('asthma', snomed, '195967001')).toBe(true);
    expect(inValueSet('asthma', 'urn:local', '195967001')).toBe(false);
  });

  it('reads each node as one PHI-free line', () => {
    expect(describeSegmentNode(parseSegmentDefinition({ type: 'hba1c', op: '>', value: 9, withinDays: 180 }))).toBe('latest HbA1c > 9 within 180 days');
    expect(describeSegmentNode(parseSegmentDefinition({ type: 'condition', valueSet: 'diabetes', status: 'active' }))).toBe('active condition value set diabetes');
    expect(describeSegmentNode(parseSegmentDefinition({ type: 'age', min: 40, max: 75 }))).toBe('age 40-75');
    expect(describeSegmentNode(parseSegmentDefinition({ type: 'coverage', active: true }))).toBe('active coverage');
  });
});
