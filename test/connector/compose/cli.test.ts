// `outreach template create|update|show|list|scan` against a real store: versions, analysis output and refusals.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerTemplateCommands } from '../../../connector/compose/cli.js';
import { cliRunner } from '../../support/cli-runner.js';
import { hasPostgres, openTestStore } from '../../support/postgres.js';

describe('template commands', () => {
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let dir: string;
  beforeAll(async () => {
    // Not a storage test: any real store will do, and PostgreSQL starts in milliseconds where PGlite takes seconds.
    store = await openTestStore(hasPostgres ? 'postgres' : 'pglite');
    dir = mkdtempSync(join(tmpdir(), 'outreach-template-'));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await store.close();
  });

  /** Runs one command line; returns what it printed and its exit code. */
  const run = cliRunner([registerTemplateCommands], () => ({ db: store.db }));

  it('creates from a JSON file, updates one field from a file, shows and lists the versions', async () => {
    const file = join(dir, 'flu.json');
    writeFileSync(file, JSON.stringify({ subject: 'Flu shots at [practice name]', preheader: 'Walk in', html: '<p>Hi [first name|there]</p>', text: 'Hi [first name|there]' }));
    const created = await run(['template', 'create', 'flu', '--file', file]);
    expect(created.exitCode).toBe(0);
    expect(created.out).toMatchObject({ name: 'flu', version: 1, phiClass: 'identity', createdBy: expect.stringMatching(/^cli:/) });
    const textFile = join(dir, 'flu.txt');
    writeFileSync(textFile, 'Hi [first name|there], your A1C: [last A1C|n/a]');
    const updated = await run(['template', 'update', 'flu', '--text-file', textFile, '--from-name', 'pcp']);
    expect(updated.out).toMatchObject({ version: 2, created: true, phiClass: 'clinical', deliveryModes: ['tls-required', 'escrow'], content: { fromName: 'pcp' } });
    const removed = await run(['template', 'update', 'flu', '--no-from-name']);
    expect(removed.out).toMatchObject({ version: 3, created: true });
    expect((removed.out as { content: Record<string, unknown> }).content.fromName).toBeUndefined();
    const shown = await run(['template', 'show', 'flu', '--version', '2']);
    expect(shown.out).toMatchObject({ version: 2, analysis: { phiClass: 'clinical', tagNames: ['first name', 'last a1c', 'pcp name', 'practice name'] } });
    const human = await run(['template', 'show', 'flu'], false);
    expect(human.text).toContain('flu v3');
    expect(human.text).toContain('delivery modes allowed: tls-required, escrow');
    expect(human.text).toMatch(/text 1:29 {2}condition \(high, condition-term\)/);
    const versions = await run(['template', 'show', 'flu', '--versions']);
    expect((versions.out as Array<{ version: number }>).map((v) => v.version)).toEqual([1, 2, 3]);
    const list = await run(['template', 'list'], false);
    expect(list.text).toMatch(/^flu\s+v3 clinical\s+\[first name\] \[last a1c\] \[practice name\]$/);
  });

  it('refuses PHI in the subject and unknown tags with their code, and saves nothing', async () => {
    const bad = await run(['template', 'create', 'bad', '--subject', 'Your HIV test', '--text', 'Hello']);
    expect(bad.exitCode).toBe(1);
    expect(bad.out).toEqual({ error: { code: 'TEMPLATE_PHI_BLOCKED', message: 'subject holds PHI (condition) at 1:6' } });
    const unknown = await run(['template', 'create', 'bad', '--subject', 'Hello', '--text', 'Hi [nickname]']);
    expect(unknown.out).toMatchObject({ error: { code: 'TEMPLATE_INVALID' } });
    const missing = await run(['template', 'create', 'bad', '--subject', 'Hello']);
    expect(missing.out).toMatchObject({ error: { code: 'TEMPLATE_INVALID', message: 'text is missing' } });
    const list = await run(['template', 'list']);
    expect((list.out as Array<{ name: string }>).map((t) => t.name)).not.toContain('bad');
  });

  it('scans a saved template, a file and free text without printing the text it found', async () => {
    const saved = await run(['template', 'scan', 'flu']);
    expect(saved.out).toMatchObject({ phiClass: 'clinical', blocked: [], deliveryModes: ['tls-required', 'escrow'] });
    const file = join(dir, 'scan.json');
    writeFileSync(file, JSON.stringify({ subject: 'Hi [first name]', text: 'Call 555-201-3344' }));
    const scanned = await run(['template', 'scan', '--file', file], false);
    expect(scanned.exitCode).toBe(2);
    expect(scanned.text).toContain('BLOCKED: subject 1:4 [first name]');
    expect(scanned.text).toContain('text 1:6  phone (medium, phone-nanp)');
    expect(scanned.text).not.toContain('555-201-3344');
    const free = await run(['template', 'scan', '--input', 'SSN 123-45-6789, DOB 03/14/1962'], false);
    expect(free.text).toBe('findings: 2\n  4-15  ssn (high, ssn-format)\n  21-31  dob (high, dob-context)');
  });
});
