// Property: after any sequence of grants, revocations, expiries, opt-outs and opt-ins, the gate agrees with a plain replay model.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../../connector/audit/audit-log.js';
import { ConsentRegistry } from '../../../connector/consent/registry.js';
import type { Purpose } from '../../../connector/consent/purposes.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';
import { createTestCipher } from '../../support/test-cipher.js';

const hour = 3_600_000;
const purposes: Purpose[] = ['marketing', 'appointment-reminder', 'refill-reminder'];
const patients = [0, 1, 2];

type Op =
  | { kind: 'grant'; patient: number; purpose: Purpose; startOffsetH: number; lengthH: number | null; version: string }
  | { kind: 'revoke'; patient: number; purpose: Purpose }
  | { kind: 'expire'; patient: number; purpose: Purpose }
  | { kind: 'opt-out'; patient: number }
  | { kind: 'opt-in'; patient: number }
  | { kind: 'advance'; hours: number };

const patientArb = fc.constantFrom(...patients);
const purposeArb = fc.constantFrom(...purposes);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('grant' as const), patient: patientArb, purpose: purposeArb, startOffsetH: fc.integer({ min: -48, max: 24 }), lengthH: fc.option(fc.integer({ min: 1, max: 96 }), { nil: null }), version: fc.constantFrom('v1', 'v2', 'v3') }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('revoke' as const), patient: patientArb, purpose: purposeArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const), patient: patientArb, purpose: purposeArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('opt-out' as const), patient: patientArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('opt-in' as const), patient: patientArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), hours: fc.integer({ min: 1, max: 72 }) }) },
);

/** The reference: a list of every event, replayed by scanning backwards. No indexes, no SQL, no shared code. */
interface ModelEvent {
  patient: number;
  purpose: Purpose | 'channel';
  status: 'active' | 'revoked' | 'expired';
  start: number;
  end: number | null;
  version: string | null;
}

function modelDecision(events: readonly ModelEvent[], patient: number, purpose: Purpose, at: number): { allowed: boolean; version: string | null } {
  const last = (p: Purpose | 'channel') => [...events].reverse().find((e) => e.patient === patient && e.purpose === p);
  const channel = last('channel');
  if (channel && channel.status === 'revoked') return { allowed: false, version: null };
  const e = last(purpose);
  if (purpose !== 'marketing') return { allowed: !(e && e.status === 'revoked'), version: e && e.status === 'active' ? e.version : null };
  if (!e || e.status !== 'active') return { allowed: false, version: null };
  const inPeriod = e.start <= at && (e.end === null || at < e.end);
  return { allowed: inPeriod, version: inPeriod ? e.version : null };
}

describe.each(storeKinds)('consent gate against a reference model on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  beforeAll(async () => {
    store = await openTestStore(kind);
  });
  afterAll(async () => store.close());

  it('agrees with the model after every step of random histories', async () => {
    const cipher = createTestCipher();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 16 }), async (ops) => {
        // Each run uses its own patients, so runs never see each other's rows and nothing needs resetting.
        const base = 1 + run++ * 10;
        let now = Date.UTC(2026, 0, 1);
        const audit = createAuditLog({ db: store.db, cipher, clock: () => new Date(now) });
        const registry = new ConsentRegistry({ db: store.db, cipher, audit, clock: () => new Date(now) });
        const actor = { name: 'prop', role: 'admin' };
        const events: ModelEvent[] = [];
        for (const op of ops) {
          if (op.kind === 'advance') now += op.hours * hour;
          else if (op.kind === 'grant') {
            const start = now + op.startOffsetH * hour;
            const end = op.lengthH === null ? null : start + op.lengthH * hour;
            await registry.grant(
              { patientId: base + op.patient, purpose: op.purpose, channel: 'email', source: 'admin', textVersion: op.version, grantedAt: new Date(start), expiresAt: end === null ? null : new Date(end) },
              actor,
            );
            events.push({ patient: op.patient, purpose: op.purpose, status: 'active', start, end, version: op.version });
          } else if (op.kind === 'revoke' || op.kind === 'expire') {
            const change = { patientId: base + op.patient, purpose: op.purpose, channel: 'email' as const, source: 'admin' as const };
            await (op.kind === 'revoke' ? registry.revoke(change, actor) : registry.expire(change, actor));
            events.push({ patient: op.patient, purpose: op.purpose, status: op.kind === 'revoke' ? 'revoked' : 'expired', start: now, end: null, version: null });
          } else {
            const change = { patientId: base + op.patient, channel: 'email' as const, source: 'unsubscribe-link' as const };
            await (op.kind === 'opt-out' ? registry.optOut(change, actor) : registry.optIn(change, actor));
            events.push({ patient: op.patient, purpose: 'channel', status: op.kind === 'opt-out' ? 'revoked' : 'active', start: now, end: null, version: null });
          }
          for (const purpose of purposes) {
            const batch = await registry.isAllowedMany(patients.map((p) => base + p), purpose, 'email', new Date(now));
            for (const p of patients) {
              const want = modelDecision(events, p, purpose, now);
              const got = batch.get(String(base + p))!;
              expect({ patient: p, purpose, allowed: got.allowed, version: got.allowed ? got.consentVersion : null }).toEqual({
                patient: p,
                purpose,
                allowed: want.allowed,
                version: want.allowed ? want.version : null,
              });
            }
          }
          // The single gate for the patient just touched answers the same as the batch.
          const touched = 'patient' in op ? op.patient : 0;
          for (const purpose of purposes) {
            const single = await registry.isAllowed(base + touched, purpose, 'email', new Date(now));
            expect(single.allowed).toBe(modelDecision(events, touched, purpose, now).allowed);
          }
        }
      }),
      { numRuns: 25, seed: 20261123, endOnFailure: true },
    );
  });
});
