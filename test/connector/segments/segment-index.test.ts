// The segment index against a brute-force evaluation of the facts: every predicate, whole trees, and incremental changes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { popcount, setRowsAfter } from '../../../connector/segments/bitset.js';
import { dayNumber } from '../../../connector/segments/day-number.js';
import { parseSegmentDefinition, type SegmentNode, type SegmentPredicate } from '../../../connector/segments/definition.js';
import { compilePredicate } from '../../../connector/segments/predicate-scan.js';
import { evaluateSegment, explainSegment } from '../../../connector/segments/segment-evaluator.js';
import { SegmentIndex } from '../../../connector/segments/segment-index.js';
import { asOfDates, nodeArb, patientArb, predicateArbs, predicateTypes, scenarioArb } from './support/arbitraries.js';
import { matches, type PatientState } from './support/brute-force.js';

const seed = 20261123;
type Population = Array<PatientState & { id: number }>;

function indexOf(population: Population): SegmentIndex {
  const index = new SegmentIndex();
  for (const p of population) {
    index.upsert(p.id, p.facts);
    for (const purpose of p.authorized) index.setAuthorized(p.id, purpose, true);
    index.setSuppressed(p.id, p.suppressed);
  }
  return index;
}

const expected = (population: Population, node: SegmentNode, asOf: string) =>
  population.filter((p) => matches(node, p, asOf)).map((p) => p.id).sort((a, b) => a - b);
const members = (index: SegmentIndex, node: SegmentNode, asOf: string) =>
  setRowsAfter(evaluateSegment(index, node, dayNumber(asOf)), -1, 1e9);

describe('segment index', () => {
  describe.each(predicateTypes)('predicate %s', (type) => {
    it('scans, row-tests and combines exactly like the brute-force evaluation of the facts', () => {
      fc.assert(
        fc.property(scenarioArb.chain((s) => fc.tuple(fc.constant(s), predicateArbs(s.asOf)[type])), ([{ asOf, population }, predicate]) => {
          const parsed = parseSegmentDefinition(predicate) as SegmentPredicate;
          const index = indexOf(population);
          const want = expected(population, parsed, asOf);
          expect(members(index, parsed, asOf)).toEqual(want);
          // The per-row test used to refine sparse candidates agrees with the scan.
          const compiled = compilePredicate(index, parsed, dayNumber(asOf));
          expect(population.filter((p) => compiled.test(p.id)).map((p) => p.id).sort((a, b) => a - b)).toEqual(want);
          // The inline refine of per-row column predicates, both ways, over every patient as candidates.
          if (compiled.refine) {
            const kept = index.present.slice();
            compiled.refine(kept, false);
            expect(setRowsAfter(kept, -1, 1e9)).toEqual(want);
            const dropped = index.present.slice();
            compiled.refine(dropped, true);
            expect(setRowsAfter(dropped, -1, 1e9)).toEqual(population.map((p) => p.id).filter((id) => !want.includes(id)).sort((a, b) => a - b));
          }
          // Negated, and inside an `all` (refined row by row after the first child).
          const notIt = { not: parsed };
          expect(members(index, notIt, asOf)).toEqual(expected(population, notIt, asOf));
          const inAll = { all: [{ type: 'gender' as const, value: ['female' as const, 'male' as const] }, parsed, { not: { type: 'authorized' as const, purpose: 'marketing' } }] };
          expect(members(index, inAll, asOf)).toEqual(expected(population, inAll, asOf));
          // HbA1c by binary search once the value order is sorted.
          index.sortA1c();
          expect(members(index, parsed, asOf)).toEqual(want);
        }),
        { seed, numRuns: 30 },
      );
    });
  });

  it('evaluates whole all / any / not trees like the brute force, and explains each node with its own count', () => {
    fc.assert(
      fc.property(scenarioArb.chain((s) => fc.tuple(fc.constant(s), nodeArb(s.asOf))), ([{ asOf, population }, node]) => {
        let parsed: SegmentNode;
        try {
          parsed = parseSegmentDefinition(node);
        } catch {
          fc.pre(false);
          return;
        }
        const index = indexOf(population);
        expect(members(index, parsed, asOf)).toEqual(expected(population, parsed, asOf));
        const steps = explainSegment(index, parsed, dayNumber(asOf));
        expect(steps[0]!.count).toBe(expected(population, parsed, asOf).length);
        expect(steps.every((s) => s.cumulative <= population.length && s.count <= population.length)).toBe(true);
      }),
      { seed, numRuns: 60 },
    );
  });

  it('follows upserts and removals without a rebuild (and compacts its entry tables on the way)', () => {
    fc.assert(
      fc.property(
        scenarioArb.chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.array(fc.tuple(fc.nat(), fc.option(patientArb(s.asOf), { nil: undefined })), { maxLength: 40 }),
            nodeArb(s.asOf),
          ),
        ),
        ([{ asOf, population }, changes, node]) => {
          let parsed: SegmentNode;
          try {
            parsed = parseSegmentDefinition(node);
          } catch {
            fc.pre(false);
            return;
          }
          const index = indexOf(population);
          index.sortA1c();
          const live = new Map(population.map((p) => [p.id, p]));
          for (const [pick, replacement] of changes) {
            if (population.length === 0) break;
            const target = population[pick % population.length]!;
            if (replacement) {
              const next = { ...replacement, id: target.id };
              index.upsert(target.id, next.facts);
              for (const purpose of ['marketing', 'appointment-reminder', 'treatment-reminder']) {
                index.setAuthorized(target.id, purpose, next.authorized.has(purpose));
              }
              index.setSuppressed(target.id, next.suppressed);
              live.set(target.id, next);
            } else {
              index.remove(target.id);
              live.delete(target.id);
            }
          }
          const now = [...live.values()];
          expect(index.size).toBe(now.length);
          expect(members(index, parsed, asOf)).toEqual(expected(now, parsed, asOf));
          index.sortA1c();
          expect(members(index, parsed, asOf)).toEqual(expected(now, parsed, asOf));
        },
      ),
      { seed, numRuns: 40 },
    );
  });

  it('merges adjacent coverage periods, keeps a one-day gap uncovered, and reads open ends', () => {
    const index = new SegmentIndex();
    const base = { patientId: 'p', source: 's', deceased: false, encounters: [], conditions: [], observations: [], procedures: [], medications: [], appointments: [] };
    const cov = (start: string | undefined, end: string | undefined, active = true) => ({ active, source: 'Coverage' as const, ...(start ? { start } : {}), ...(end ? { end } : {}) });
    const periods = {
      1: [cov('2026-01-01', '2026-06-29'), cov('2026-06-30', '2026-12-31')], // adjacent: one period
      2: [cov('2026-01-01', '2026-06-29'), cov('2026-07-01', '2026-12-31')], // a gap on 06-30 exactly
      3: [cov(undefined, '2026-06-30')], // open start
      4: [cov('2026-06-30', undefined), cov('2020-01-01', '2021-01-01')], // open end, and an old period (gaps)
      5: [cov('2026-01-01', '2026-12-31', false)], // inactive
      6: [cov('2026-07-01', '2026-06-01')], // empty period
      7: [cov('2026-01-01', '2026-07-15'), cov('2026-03-01', '2026-06-30')], // overlapping
    } as const;
    for (const [id, coverage] of Object.entries(periods)) index.upsert(Number(id), { ...base, coverage: [...coverage] });
    const on = (day: string) => setRowsAfter(evaluateSegment(index, { type: 'coverage', active: true }, dayNumber(day)), -1, 100);
    expect(on('2026-06-30')).toEqual([1, 3, 4, 7]);
    expect(on('2026-07-01')).toEqual([1, 2, 4, 7]);
    expect(on('2020-06-01')).toEqual([3, 4]);
    expect(on('2026-06-29')).toEqual([1, 2, 3, 7]);
    // The same through the row test used when refining candidates.
    const test = compilePredicate(index, { type: 'coverage', active: true }, dayNumber('2026-06-30')).test;
    expect([1, 2, 3, 4, 5, 6, 7].filter(test)).toEqual([1, 3, 4, 7]);
    // `active: false` is "has a coverage not active on the day" (row 1's first period has ended); "no active coverage"
    // is `not` of `active: true`.
    expect(setRowsAfter(evaluateSegment(index, { type: 'coverage', active: false }, dayNumber('2026-06-30')), -1, 100)).toEqual([1, 2, 4, 5, 6]);
    expect(setRowsAfter(evaluateSegment(index, { not: { type: 'coverage', active: true } }, dayNumber('2026-06-30')), -1, 100)).toEqual([2, 5, 6]);
  });

  it('keeps counts right through thousands of replacements of the same patients', () => {
    const index = new SegmentIndex();
    const facts = (id: number, round: number) => ({
      patientId: `p${id}`,
      source: 's',
      deceased: false,
      encounters: [],
      conditions: [{ codes: [{ system: 'http://snomed.info/sct', code: round % 2 ? '44054006' : '38341003' }], clinicalStatus: 'active' }],
      observations: [{ loinc: '4548-4', value: 5 + (round % 7), date: '2026-01-01' }],
      coverage: [{ active: round % 3 === 0, source: 'Coverage' as const }],
      procedures: [],
      medications: [],
      appointments: [],
    });
    for (let round = 0; round < 60; round++) for (let id = 0; id < 300; id++) index.upsert(id, facts(id, round));
    const asOf = dayNumber('2026-06-30');
    const diabetes = parseSegmentDefinition({ type: 'condition', valueSet: 'diabetes', status: 'active' });
    const a1c = parseSegmentDefinition({ type: 'hba1c', op: '>', value: 7.5 }); // the last round wrote 5 + 59 % 7 = 8
    expect(popcount(evaluateSegment(index, diabetes, asOf))).toBe(300);
    expect(popcount(evaluateSegment(index, a1c, asOf))).toBe(300);
    expect(popcount(evaluateSegment(index, { type: 'coverage', active: true }, asOf))).toBe(0);
    expect(index.conditions.live).toBe(300);
    expect(index.conditions.length).toBeLessThan(300 * 30);
  });
});
