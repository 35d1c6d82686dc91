// `npm run demo -- --once` as a newcomer runs it: its printed counts against an independent computation from the generated population and the Synthea bundles, a re-run on the same store, and the canary PHI scan over OUTREACH_HOME, the output and every email.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Bundle, Condition, Encounter, Observation, Patient } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePopulation, type PatientTruth } from '../../connector/demo/population.js';

const repoRoot = resolve(import.meta.dirname, '../..');
const syntheaDir = resolve(repoRoot, '../shared/fixtures/synthea');
const patients = 400;
const seed = 4242;
const dayMs = 86_400_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  summary: any;
}

/** The demo on embedded defaults: PGlite under `home`, a key file there, logs there (whatever this shell points elsewhere). */
function demoEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OUTREACH_HOME: home, OUTREACH_LOG_LEVEL: 'trace' };
  for (const name of ['DATABASE_URL', 'DATABASE_SCHEMA', 'OUTREACH_MASTER_KEY', 'OUTREACH_LOG_FILE', 'OUTREACH_EXTRA_CA_FILE', 'OUTREACH_SMTP_RELAY_URL']) delete env[name];
  return env;
}

function runDemo(home: string, mailDir: string): Promise<Run> {
  return new Promise((done, reject) => {
    const child = spawn('npm', ['run', '--silent', 'demo', '--', '--once', '--patients', String(patients), '--seed', String(seed), '--save-mail', mailDir], {
      cwd: repoRoot,
      env: demoEnv(home),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('DEMO-SUMMARY '));
      done({ code, stdout, stderr, summary: line ? JSON.parse(line.slice('DEMO-SUMMARY '.length)) : undefined });
    });
  });
}

/** What the demo must report, computed from the generator's ground truth and the Synthea bundles, without the connector. */
function expectation(day: string) {
  const now = new Date(`${day}T00:00:00Z`).getTime();
  const { truth } = generatePopulation({ patients, seed, now: new Date(now), mailDomains: ['tls.example.test', 'plain.example.test'] });
  const overdue = (t: PatientTruth) => !t.lastVisit || now - Date.parse(`${t.lastVisit}T00:00:00Z`) > 365 * dayMs;
  const members = truth.filter((t) => t.diabetic && t.latestA1c !== undefined && t.latestA1c.value > 9 && overdue(t));

  // Synthea: diabetes (SNOMED 44054006 type 2, 46635009 type 1, 73211009 unspecified; prediabetes is not diabetes) active, newest A1C, last encounter.
  const bundles = readdirSync(syntheaDir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(syntheaDir, f), 'utf8')) as Bundle);
  let syntheaPatients = 0;
  let syntheaMembers = 0;
  for (const b of bundles) {
    const rs = (b.entry ?? []).map((e) => e.resource!).filter(Boolean);
    const patient = rs.find((r): r is Patient => r.resourceType === 'Patient');
    if (!patient) continue;
    syntheaPatients++;
    const diabetic = rs.some((r) => r.resourceType === 'Condition' && (r as Condition).clinicalStatus?.coding?.[0]?.code === 'active'
      && ((r as Condition).code?.coding ?? []).some((c) => ['44054006', '46635009', '73211009'].includes(c.code ?? '')));
    const a1c = rs.filter((r): r is Observation => r.resourceType === 'Observation' && ((r as Observation).code.coding ?? []).some((c) => c.code === '4548-4'))
      .sort((x, y) => String(y.effectiveDateTime).localeCompare(String(x.effectiveDateTime)))[0]?.valueQuantity?.value;
    const last = rs.filter((r): r is Encounter => r.resourceType === 'Encounter').map((e) => Date.parse(e.period?.end ?? e.period?.start ?? '')).sort((x, y) => y - x)[0];
    if (diabetic && a1c !== undefined && a1c > 9 && (last === undefined || now - last > 365 * dayMs)) syntheaMembers++;
  }

  const excluded = { 'unknown-patient': 0, deceased: 0, 'no-email': 0, unsubscribed: 0, 'no-authorization': 0, suppressed: 0, 'already-sent': 0 };
  const recipients: PatientTruth[] = [];
  for (const t of members) {
    if (t.deceased) excluded.deceased++;
    else if (!t.email) excluded['no-email']++;
    else if (t.marketing === 'revoked') excluded.unsubscribed++;
    else if (t.marketing === 'none') excluded['no-authorization']++;
    else recipients.push(t);
  }
  // Synthea patients carry no email address: any of them in the segment would be excluded as no-email.
  excluded['no-email'] += syntheaMembers;
  return {
    truth,
    syntheaPatients,
    segment: members.length + syntheaMembers,
    excluded,
    recipients,
    tls: recipients.filter((t) => t.email!.endsWith('@tls.example.test')),
    escrow: recipients.filter((t) => t.email!.endsWith('@plain.example.test')),
  };
}

function filesUnder(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) filesUnder(path, out);
    else out.push(path);
  }
  return out;
}

describe('npm run demo -- --once', () => {
  let home: string;
  let mailDir: string;
  let mailDir2: string;
  let first: Run;
  let second: Run;

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'outreach-demo-'));
    mailDir = mkdtempSync(join(tmpdir(), 'outreach-demo-mail-'));
    mailDir2 = mkdtempSync(join(tmpdir(), 'outreach-demo-mail2-'));
    first = await runDemo(home, mailDir);
  }, 240_000);
  afterAll(() => {
    for (const d of [home, mailDir, mailDir2]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('runs every step, exits 0 and prints counts that match an independent computation from the generated data', () => {
    expect(first.summary, first.stdout + first.stderr).toBeDefined();
    expect(first.summary.error, first.stdout).toBeUndefined();
    expect(first.code).toBe(0);
    const s = first.summary;
    expect(s.ok).toBe(true);
    const want = expectation(s.population.day);
    expect(want.segment).toBeGreaterThan(5);
    expect(want.tls.length).toBeGreaterThan(0);
    expect(want.escrow.length).toBeGreaterThan(0);
    expect(s.population).toMatchObject({ patients, seed, syntheaPatients: want.syntheaPatients });
    expect(s.synced).toMatchObject({ patientsUpdated: patients + want.syntheaPatients, quarantined: 0, consents: want.truth.filter((t) => t.marketing !== 'none').length });
    expect(s.segment.size).toBe(want.segment);
    expect(s.campaign).toMatchObject({ status: 'sent', members: want.segment, queued: want.recipients.length, excluded: want.excluded });
    expect(s.delivery).toMatchObject({ tls: want.tls.length, escrowed: want.escrow.length, held: 0, failed: 0 });
    expect(s.delivery.byDomain).toEqual({
      'tls.example.test': { messages: want.tls.length, secure: want.tls.length },
      'plain.example.test': { messages: want.escrow.length, secure: 0 },
    });
    expect(s.portal).toEqual({ opened: true });
    // The human lines say the same as the JSON.
    expect(first.stdout).toContain(`synced: ${patients + want.syntheaPatients} patients`);
    expect(first.stdout).toContain(`: ${want.segment} of ${patients + want.syntheaPatients} patients`);
    expect(first.stdout).toContain(`delivered over verified TLS: ${want.tls.length}; escrowed (PHI-free notice + portal): ${want.escrow.length}; held: 0`);
    expect(first.stdout).toMatch(/users \(passwords shown once\): admin \/ \S+, marketer \/ \S+, clinician \/ \S+/);
  });

  it('keeps PHI only in mail that crossed verified TLS: never in notices, the output, the logs or the store at rest', () => {
    const want = expectation(first.summary.population.day);
    const practitioners = new Set<string>();
    const given = { female: ['Avery', 'Marisol', 'Quinn', 'Tamsin', 'Odette', 'Linnea', 'Priya', 'Imogen', 'Noor', 'Sunniva', 'Beatrix', 'Ines'], male: ['Thaddeus', 'Rafferty', 'Caspian', 'Emrys', 'Lucan', 'Dorian', 'Anselm', 'Jovan', 'Tobiah', 'Ferris', 'Osric', 'Milo'] };
    const family = ['Quillfeather', 'Ashgrove', 'Brambleton', 'Cinderby', 'Dunmore', 'Everhart', 'Foxwell', 'Galloway', 'Hollins', 'Ivesdale', 'Juniper', 'Kestrel', 'Larkspur', 'Merriweather'];
    for (let i = 0; i < 12; i++) practitioners.add(`${given[i % 2 ? 'male' : 'female'][(i * 7) % 12]} ${family[(i * 5) % family.length]}`);
    // Each patient's canaries: full name (unless a practitioner shares it), email, MRN, birth date.
    const { resources } = generatePopulation({ patients, seed, now: new Date(`${first.summary.population.day}T00:00:00Z`), mailDomains: ['tls.example.test', 'plain.example.test'] });
    const names = new Set<string>();
    const emails = new Set<string>();
    const mrns = new Set<string>();
    const births = new Set<string>();
    const byEmail = new Map<string, Patient>();
    for (const r of resources) {
      if (r.resourceType !== 'Patient') continue;
      const full = `${r.name![0]!.given![0]} ${r.name![0]!.family}`;
      if (!practitioners.has(full)) names.add(full);
      mrns.add(r.identifier![0]!.value!);
      births.add(r.birthDate!);
      const email = r.telecom?.find((t) => t.system === 'email')?.value;
      if (email) {
        emails.add(email);
        byEmail.set(email, r);
      }
    }
    const a1cOf = new Map(want.truth.filter((t) => t.email && t.latestA1c).map((t) => [t.email!, `${t.latestA1c!.value}%`]));
    const scan = (text: string, opts: { emails: boolean }): string[] => {
      const hits: string[] = [];
      for (const m of text.matchAll(/\b[A-Z][a-z]+ [A-Z][a-z]+\b/g)) if (names.has(m[0])) hits.push(`name ${m[0]}`);
      for (const m of text.matchAll(/\bD1\d{5}\b/g)) if (mrns.has(m[0])) hits.push(`mrn ${m[0]}`);
      for (const m of text.matchAll(/\b(19|20)\d\d-\d\d-\d\d\b/g)) if (births.has(m[0])) hits.push(`birth date ${m[0]}`);
      if (opts.emails) for (const m of text.matchAll(/[a-z]+\.[a-z]+\.\d+@[a-z.]+\.test/g)) if (emails.has(m[0])) hits.push(`email ${m[0]}`);
      return hits;
    };

    // The scanner finds every kind of canary where they are (the generated resources themselves).
    const sample = [...byEmail.values()].slice(0, 50).map((p) => `${p.name![0]!.given![0]} ${p.name![0]!.family}, born ${p.birthDate}, MRN ${p.identifier![0]!.value}, <${p.telecom!.find((t) => t.system === 'email')!.value}>`).join('\n');
    const control = new Set(scan(sample, { emails: true }).map((h) => h.split(' ')[0]));
    expect([...control].sort()).toEqual(['birth', 'email', 'mrn', 'name']);

    // At rest: every file under OUTREACH_HOME (PGlite data files, key file, logs, the demo CA).
    const files = filesUnder(home);
    expect(files.some((f) => f.includes('pglite'))).toBe(true);
    expect(files.some((f) => f.endsWith('demo.log'))).toBe(true);
    const atRest = files.flatMap((f) => scan(readFileSync(f).toString('latin1'), { emails: true }).map((h) => `${f}: ${h}`));
    expect(atRest).toEqual([]);
    // The logs (trace level) tell what happened, just nothing about a patient.
    const log = readFileSync(join(home, 'logs', 'demo.log'), 'utf8');
    expect(log).toContain('fhir sync finished');
    expect(log).toContain('campaign materialised');
    // What the demo printed (counts, URLs, passwords: no patient).
    expect(scan(first.stdout + first.stderr, { emails: true })).toEqual([]);

    // Every email the mailboxes received.
    const mails = readdirSync(mailDir).map((f) => ({ f, raw: readFileSync(join(mailDir, f), 'utf8') }));
    const tlsMail = mails.filter((m) => m.f.endsWith('-tls.eml'));
    const plainMail = mails.filter((m) => m.f.endsWith('-plain.eml'));
    expect(tlsMail.length).toBe(want.tls.length);
    expect(plainMail.length).toBe(want.escrow.length + 1); // the notices and one one-time code (the portal check)
    expect(tlsMail.every((m) => m.f.includes('tls.example.test'))).toBe(true);
    expect(plainMail.every((m) => m.f.includes('plain.example.test'))).toBe(true);
    for (const m of plainMail) {
      // A notice carries only the recipient's own address (it must, to arrive): no name, birth date, MRN, A1C, other address.
      const to = /^To:\s*(?:.*<)?([^>\s]+)>?\s*$/im.exec(m.raw)?.[1]?.toLowerCase() ?? '';
      expect(scan(m.raw, { emails: false }), m.f).toEqual([]);
      expect([...m.raw.matchAll(/[a-z]+\.[a-z]+\.\d+@[a-z.]+\.test/g)].every((x) => x[0] === to), m.f).toBe(true);
      expect(m.raw).not.toContain(a1cOf.get(to) ?? '(no a1c)');
      expect(m.raw).toMatch(/\/m\/[A-Za-z0-9_-]{43}|code is \d{6}/);
    }
    expect(tlsMail.flatMap((m) => scan(m.raw, { emails: true })).length).toBeGreaterThan(0);
    // Over verified TLS the personal message did go: the recipient's first name, the PCP as From name.
    for (const m of tlsMail) {
      const to = /^To:\s*(?:.*<)?([^>\s]+)>?\s*$/im.exec(m.raw)?.[1]?.toLowerCase() ?? '';
      const patient = byEmail.get(to);
      expect(patient, m.f).toBeDefined();
      expect(m.raw).toContain(`Hello ${patient!.name![0]!.given![0]}`);
      expect(m.raw).toMatch(/^From: "Dr\. [A-Z][a-z]+ [A-Z][a-z]+" <care@clinic\.example\.test>/m);
      expect(m.raw).toMatch(/^DKIM-Signature: v=1; a=rsa-sha256; .*d=clinic\.example\.test/m);
    }
  });

  it('runs again on the same OUTREACH_HOME: same counts, a new campaign, new passwords', async () => {
    second = await runDemo(home, mailDir2);
    expect(second.summary?.error, second.stdout + second.stderr).toBeUndefined();
    expect(second.code).toBe(0);
    const [a, b] = [first.summary, second.summary];
    expect(b.segment).toEqual(a.segment);
    expect(b.campaign.id).not.toBe(a.campaign.id);
    expect({ ...b.campaign, id: a.campaign.id }).toEqual(a.campaign);
    expect(b.delivery).toMatchObject({ tls: a.delivery.tls, escrowed: a.delivery.escrowed, held: 0 });
    const password = (run: Run) => /marketer \/ (\S+),/.exec(run.stdout)?.[1];
    expect(password(second)).not.toBe(password(first));
  }, 240_000);
});
