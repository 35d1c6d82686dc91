// `outreach consent grant|revoke|show|history|export` against a real store: decisions, sealed evidence, NDJSON, audit rows.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Consent } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../../connector/audit/audit-log.js';
import { registerConsentCommands } from '../../../connector/consent/cli.js';
import { ConsentRegistry } from '../../../connector/consent/registry.js';
import { cliRunner } from '../../support/cli-runner.js';
import { hasPostgres, openTestStore } from '../../support/postgres.js';
import { createTestCipher } from '../../support/test-cipher.js';

describe('consent commands', () => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let dir: string;
  let run: ReturnType<typeof cliRunner>;
  let audit: ReturnType<typeof createAuditLog>;
  beforeAll(async () => {
    // Not a storage test: any real store will do, and PostgreSQL starts in milliseconds where PGlite takes seconds.
    store = await openTestStore(hasPostgres ? 'postgres' : 'pglite');
    dir = mkdtempSync(join(tmpdir(), 'outreach-consent-'));
    const cipher = createTestCipher();
    audit = createAuditLog({ db: store.db, cipher });
    const consent = new ConsentRegistry({ db: store.db, cipher, audit });
    run = cliRunner([registerConsentCommands], () => ({ db: store.db, cipher, audit, consent }));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await store.close();
  });

  it('grants marketing from a signed form, and show reports the decision per purpose', async () => {
    const form = join(dir, 'form.txt');
    writeFileSync(form, 'I, Jane Canary, authorize marketing email. Signed 2026-03-01.');
    const grant = await run(['consent', 'grant', '--patient', '41', '--purpose', 'marketing', '--source', 'signed-form', '--ref', 'form-2231',
      '--text-version', 'hipaa-mkt-v3', '--expires-at', '2099-01-01T00:00:00Z', '--evidence-file', form]);
    expect(grant.exitCode).toBe(0);
    expect(grant.out).toMatchObject({ patientId: '41', purpose: 'marketing', status: 'active', source: 'signed-form', textVersion: 'hipaa-mkt-v3', hasEvidence: true });
    const shown = await run(['consent', 'show', '--patient', '41']);
    expect(shown.out.decisions.marketing).toMatchObject({ allowed: true, reason: 'authorized', consentVersion: 'hipaa-mkt-v3' });
    expect(shown.out.decisions['appointment-reminder']).toMatchObject({ allowed: true });
    const human = await run(['consent', 'show', '--patient', '41'], false);
    expect(human.text).toMatch(/marketing\s+allowed authorized \(text hipaa-mkt-v3\)/);
    expect(human.text).not.toContain('Canary');
  });

  it('revokes one purpose, or the whole channel without --purpose', async () => {
    await run(['consent', 'grant', '--patient', '42', '--purpose', 'marketing', '--text-version', 'v1']);
    expect((await run(['consent', 'revoke', '--patient', '42', '--purpose', 'marketing'])).out).toMatchObject({ status: 'revoked', purpose: 'marketing' });
    let shown = await run(['consent', 'show', '--patient', '42']);
    expect(shown.out.decisions.marketing.reason).toBe('revoked');
    expect(shown.out.decisions['refill-reminder'].allowed).toBe(true);
    await run(['consent', 'revoke', '--patient', '42', '--source', 'unsubscribe-link', '--reason', 'patient wrote: stop everything']);
    shown = await run(['consent', 'show', '--patient', '42']);
    expect(Object.values(shown.out.decisions).map((d: any) => d.reason)).toEqual(Array(6).fill('channel-opted-out'));
    await run(['consent', 'grant', '--patient', '42', '--resubscribe']);
    shown = await run(['consent', 'show', '--patient', '42']);
    expect(shown.out.decisions['refill-reminder'].allowed).toBe(true);
  });

  it('refuses bad input with the field named and a non-zero exit', async () => {
    const noVersion = await run(['consent', 'grant', '--patient', '43', '--purpose', 'marketing']);
    expect(noVersion.exitCode).toBe(1);
    expect(noVersion.out).toMatchObject({ error: { code: 'BAD_REQUEST' } });
    expect((await run(['consent', 'grant', '--patient', 'abc', '--purpose', 'marketing', '--text-version', 'v1'])).exitCode).toBe(1);
    expect((await run(['consent', 'grant', '--patient', '43', '--purpose', 'spam', '--text-version', 'v1'])).text).toContain('purpose must be one of');
    expect((await run(['consent', 'grant', '--patient', '43', '--purpose', 'marketing', '--text-version', 'v1', '--source', 'fhir-consent'])).exitCode).toBe(1);
  });

  it('shows history, opening sealed evidence only when asked, and audits each read', async () => {
    const plain = await run(['consent', 'history', '--patient', '41']);
    expect(plain.out).toHaveLength(1);
    expect(plain.out[0].evidence).toBeUndefined();
    const opened = await run(['consent', 'history', '--patient', '41', '--evidence']);
    expect(opened.out[0].evidence).toContain('Jane Canary');
    const actions = [];
    for await (const r of audit.search({ patientId: 41 })) actions.push(r.action);
    expect(actions).toEqual(['consent.grant', 'consent.show', 'consent.show', 'consent.history', 'consent.evidence-read']);
  });

  it('exports NDJSON of FHIR Consent to a 0600 file', async () => {
    const out = join(dir, 'consents.ndjson');
    const result = await run(['consent', 'export', '--out', out]);
    expect(result.out).toMatchObject({ file: out });
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const consents = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Consent);
    expect(consents.length).toBe(result.out.consents);
    expect(consents.every((c) => c.resourceType === 'Consent' && c.scope?.coding?.[0]?.code === 'patient-privacy')).toBe(true);
    const p41 = consents.find((c) => c.patient?.identifier?.value === '41');
    expect(p41?.provision).toMatchObject({ type: 'permit', period: { end: '2099-01-01T00:00:00.000Z' } });
    expect(readFileSync(out, 'utf8')).not.toContain('Canary');
  });
});
