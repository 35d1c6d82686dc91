// With the real keyring: sealed evidence survives a key rotation and the background reseal, and the audit chain still verifies.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../../connector/audit/audit-log.js';
import { ConsentRegistry } from '../../../connector/consent/registry.js';
import { openKeyring, sealedVersion } from '../../../connector/store/keyring.js';
import { runResealJobs } from '../../../connector/store/reseal-job.js';
import { phi, reveal } from '../../../fhir/phi.js';
import { openTestStore, storeKinds } from '../../support/postgres.js';

describe.each(storeKinds)('authorizations under key rotation on %s', (kind) => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let home: string;
  beforeAll(async () => {
    store = await openTestStore(kind);
    home = mkdtempSync(join(tmpdir(), 'outreach-consent-keys-'));
  });
  afterAll(async () => {
    rmSync(home, { recursive: true, force: true });
    await store.close();
  });

  it('reseals evidence and reasons in place (the append-only trigger allows exactly that) and keeps the audit chain valid', async () => {
    const { keyring } = await openKeyring(store.db, { home });
    const audit = createAuditLog({ db: store.db, cipher: keyring });
    const registry = new ConsentRegistry({ db: store.db, cipher: keyring, audit });
    const admin = { name: 'ada', role: 'admin' };
    const grant = await registry.grant(
      { patientId: 11, purpose: 'marketing', channel: 'email', source: 'signed-form', textVersion: 'v1', evidence: phi('Form signed by Oswin Canary') },
      admin,
    );
    const revoke = await registry.revoke({ patientId: 11, purpose: 'marketing', channel: 'email', source: 'admin', reason: phi('Oswin Canary asked to stop') }, admin);
    const before = keyring.currentVersion;

    await keyring.rotate();
    expect(await runResealJobs(store.db, keyring)).toBeGreaterThanOrEqual(2);

    const [row] = await store.db.query<{ evidence_sealed: Uint8Array }>('SELECT evidence_sealed FROM authorization_events WHERE id = $1', [grant.id]);
    expect(sealedVersion(row!.evidence_sealed)).toBe(keyring.currentVersion);
    expect(keyring.currentVersion).not.toBe(before);
    expect(reveal((await registry.openEvidence(grant))!)).toBe('Form signed by Oswin Canary');
    expect(reveal((await registry.openReason(revoke))!)).toBe('Oswin Canary asked to stop');
    expect((await registry.history(11)).map((r) => r.status)).toEqual(['active', 'revoked']);
    expect(await audit.verify()).toMatchObject({ ok: true, rows: 2 });
  });
});
