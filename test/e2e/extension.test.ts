// End to end in real Chromium: the built extension on a Lightning-like page and an EHR-like page (HTTPS, our CA), talking to a real connector (openApp + the API server) on loopback.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page, type Worker } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExtension, budgetBytes, type BuildReport } from '../../extension/vite.config.js';
import { SmartEhrRegistry } from '../../connector/smart/ehr-registry.js';
import { ClosedShadow } from './support/closed-shadow.js';
import { startConnectorWorld, unpackedExtensionId, type ConnectorWorld } from './support/connector-world.js';
import { startHttpsPages, type HttpsPages } from './support/https-pages.js';
import { ehrHtml, lightningAppHtml } from './support/lightning-page.js';
import { authorizedContact, canaries, composerText, connectorSeed, optedOutContact, users } from './support/outreach-fixtures.js';

const chromiumPath = '/usr/bin/chromium';
const ci = process.env.CI === 'true';
const haveChromium = existsSync(chromiumPath);
if (!haveChromium && !ci) {
  process.stderr.write(`\n!!! extension e2e SKIPPED: ${chromiumPath} is missing (under CI=true this is a failure) !!!\n\n`);
}

const sfHost = 'acme.lightning.force.com';
const ehrHost = 'ehr.example.test';
const artifacts = resolve(import.meta.dirname, '../artifacts/extension-e2e');
const today = () => new Date().toISOString().slice(0, 10);
const practitioner = 'Practitioner/dr-chen-1';

describe.runIf(haveChromium || ci)('extension in Chromium', () => {
  let work: string;
  let report: BuildReport;
  let world: ConnectorWorld;
  let pages: HttpsPages;
  let context: BrowserContext;
  let worker: Worker;
  let extensionId: string;
  const consoleLines: string[] = [];

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${chromiumPath} is missing: the extension e2e cannot run under CI`);
    work = mkdtempSync(join(tmpdir(), 'outreach-ext-e2e-'));
    rmSync(artifacts, { recursive: true, force: true });
    mkdirSync(artifacts, { recursive: true });
    const dist = join(work, 'extension');
    mkdirSync(dist);
    // The connector must allow the extension's origin before the browser starts: the id of an unpacked extension follows from its path.
    const expectedId = unpackedExtensionId(dist);
    const contacts = [authorizedContact, optedOutContact];
    const started = Date.now();
    [report, world, pages] = await Promise.all([
      buildExtension({ outDir: dist, extraHostPermissions: [`https://${ehrHost}/*`], report: false }),
      startConnectorWorld({ ...connectorSeed, extensionOrigin: `chrome-extension://${expectedId}` }),
      startHttpsPages([sfHost, ehrHost], (host, path) => {
        if (host === ehrHost) return path === '/' ? ehrHtml() : null;
        const m = /^\/lightning\/r\/Contact\/(\w+)\/view$/.exec(path);
        return m && contacts.some((c) => c.id === m[1]) ? lightningAppHtml(contacts, m[1]!) : null;
      }),
    ]);
    process.stdout.write(`extension e2e: build, connector (${world.kind}, seeded) and pages ready in ${Date.now() - started} ms\n`);
    context = await chromium.launchPersistentContext(join(work, 'profile'), {
      executablePath: chromiumPath,
      headless: false,
      viewport: { width: 1280, height: 860 },
      args: [
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--load-extension=${dist}`,
        `--disable-extensions-except=${dist}`,
        `--host-resolver-rules=MAP ${sfHost} 127.0.0.1:${pages.port}, MAP ${ehrHost} 127.0.0.1:${pages.port}`,
        `--ignore-certificate-errors-spki-list=${pages.spkiHash}`,
      ],
    });
    context.on('console', (msg) => consoleLines.push(msg.text()));
    worker = context.serviceWorkers()[0] ?? (await context.waitForEvent('serviceworker'));
    extensionId = new URL(worker.url()).host;
    if (extensionId !== expectedId) throw new Error(`Chromium gave the extension id ${extensionId}, not ${expectedId} computed from its path: the connector would refuse its origin`);
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await pages?.close();
    await world?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const shot = (page: Page, name: string) => page.screenshot({ path: join(artifacts, `${name}.png`) });
  const extensionPage = async (path: string) => {
    const page = await context.newPage();
    await page.goto(`chrome-extension://${extensionId}/${path}`);
    return page;
  };
  const signIn = async (page: Page, user: { username: string; password: string }) => {
    await page.fill('input[name=username]', user.username);
    await page.fill('input[name=password]', user.password);
    await page.click('button[name=sign-in]');
    await page.getByText(`Signed in as ${user.username}`).waitFor();
  };

  it('stays within the bundle budget', () => {
    process.stdout.write(`extension bundle: ${(report.totalGzipBytes / 1024).toFixed(1)} KB gzipped (budget ${budgetBytes / 1024} KB)\n`);
    expect(report.totalGzipBytes).toBeLessThanOrEqual(budgetBytes);
  });

  it('lets an admin set the connector, grant the EHR origin and register the EHR for SMART app launch', async () => {
    const options = await extensionPage('options/index.html');
    await options.fill('input[name=connector-url]', world.url);
    await options.click('button[name=save-connector]');
    await signIn(options, { username: world.adminUsername, password: users.admin.password });
    await options.fill('input[name=ehr-origin]', `https://${ehrHost}`);
    await options.click('button[name=grant-ehr]');
    await options.getByText('The approval queue now runs on 1 EHR origin(s).').waitFor();

    // SMART: the redirect URI is prefilled with the connector's callback; the admin registers the EHR, then links a practitioner.
    await options.locator('[data-part=smart-ehrs]').getByText('No EHR is registered for app launch.').waitFor();
    expect(await options.inputValue('input[name=smart-redirect-uri]')).toBe(`${world.url}/smart/callback`);
    await options.fill('input[name=smart-name]', 'Example EHR');
    await options.fill('input[name=smart-iss]', `https://${ehrHost}/fhir`);
    await options.fill('input[name=smart-client-id]', 'outreach-approvals');
    await options.click('button[name=register-ehr]');
    await options.getByText(`Registered Example EHR (https://${ehrHost}/fhir) for app launch.`).waitFor();
    await options.fill('input[name=practitioner]', practitioner);
    await options.fill('input[name=practitioner-username]', users.clinician.username);
    await options.click('button[name=link-practitioner]');
    await options.getByText(`Linked ${practitioner} to ${users.clinician.username}.`).waitFor();
    await options.locator(`[data-link="${practitioner}"]`).waitFor();
    await shot(options, '01-options-admin');

    const registry = new SmartEhrRegistry({ db: world.app.db, audit: world.app.audit, users: world.app.users });
    const [ehr] = await registry.list();
    expect(ehr).toMatchObject({ name: 'Example EHR', iss: `https://${ehrHost}/fhir`, clientId: 'outreach-approvals', redirectUri: `${world.url}/smart/callback`, autoProvision: false });
    expect((await registry.links(ehr!.id)).map((l) => [l.practitioner, l.username])).toEqual([[practitioner, users.clinician.username]]);

    await options.click('button[name=sign-out]');
    await options.locator('button[name=sign-in]').waitFor();
    await options.close();
  });

  let sf: Page;
  let shadow: ClosedShadow;

  it('shows the right consent on the Contact record page, and refreshes it when the marketer signs in', async () => {
    sf = await context.newPage();
    await sf.goto(`https://${sfHost}/lightning/r/Contact/${authorizedContact.id}/view`);
    shadow = await ClosedShadow.attach(sf);
    await shadow.waitForText('consent-badge', '.badge', (t) => t.includes('sign in to see consent'));

    const popup = await extensionPage('popup/index.html');
    await signIn(popup, users.marketer);
    // Marketers compose; the approval queue is the clinicians'.
    expect(await popup.locator('button[name=open-side-panel]').count()).toBe(0);
    await shot(popup, '02-popup-marketer');
    await popup.close();
    const badge = await shadow.waitForText('consent-badge', '.badge', (t) => t.includes('Authorized'));
    expect(badge).toContain('Authorized for marketing');
    expect(badge).toContain('expires 2027-06-30');
    // The badge sits next to the e-mail field of the visible page.
    const placed = await sf.evaluate(() => document.querySelector('.oneContent.active lightning-formatted-email + [data-secure-outreach="consent-badge"]') !== null);
    expect(placed).toBe(true);
    await shot(sf, '03-consent-badge');
  });

  // The badge's last campaign comes from the outbox, where the send pipeline keys messages by `campaign/<id>`.
  it('shows the campaign that last reached the contact (delivered before the test through the real pipeline)', async () => {
    const badge = await shadow.text('consent-badge', '.badge');
    expect(badge).toContain(`Last campaign: ${connectorSeed.previousCampaign} (${today()})`);
  });

  it('spends at most 30 ms of main-thread work on a Lightning page load (1,000 rows of DOM churn)', async () => {
    await sf.reload();
    shadow = await ClosedShadow.attach(sf);
    await shadow.waitForText('consent-badge', '.badge', (t) => t.includes('Authorized'));
    await sf.waitForFunction(() => document.querySelectorAll('table.related tr').length === 1000);
    const work = await sf.evaluate(() => {
      const entries = performance.getEntriesByName('secure-outreach:work');
      return { total: entries.reduce((sum, e) => sum + e.duration, 0), slices: entries.length, longest: Math.max(...entries.map((e) => e.duration)) };
    });
    process.stdout.write(
      `content-script work on the Lightning-like page, load to badge: ${work.total.toFixed(2)} ms in ${work.slices} slices (longest ${work.longest.toFixed(2)} ms)\n`,
    );
    expect(work.slices).toBeGreaterThan(1);
    expect(work.total).toBeLessThanOrEqual(30);
  });

  it('raises a PHI warning when a diagnosis is typed into the composer and holds the send', async () => {
    await sf.click('.ql-editor');
    await sf.keyboard.type(composerText);
    const warning = await shadow.waitForText('phi-warning', '.warning-box', (t) => t.includes('PHI detected'));
    expect(warning).toMatch(/diagnosis or condition/);
    expect(warning).toMatch(/lab value/);
    expect(await sf.evaluate(() => (CSS as unknown as { highlights: Map<string, unknown> }).highlights.has('secure-outreach-phi'))).toBe(true);

    const typing = await sf.evaluate(() => performance.getEntriesByName('secure-outreach:work').reduce((sum, e) => sum + e.duration, 0));
    process.stdout.write(`content-script work after typing ${composerText.length} characters (live scan): ${typing.toFixed(2)} ms cumulative\n`);
    await sf.click('force-docking-panel button');
    await shadow.waitForText('phi-warning', '.warning-box', (t) => t.includes('Send this message anyway?'));
    expect(await sf.textContent('.send-result')).toBe('');
    await shot(sf, '04-phi-warning-send-held');
    await shadow.click('phi-warning', 'button.secondary');
    await shadow.waitForText('phi-warning', '.warning-box', (t) => !t.includes('Send this message anyway?'));
  });

  it('follows SPA navigation to another record and back', async () => {
    await sf.click(`a[data-nav="${optedOutContact.id}"]`);
    const badge = await shadow.waitForText('consent-badge', '.badge', (t) => t.includes('Opted out'));
    expect(badge).toContain(`Opted out ${today()}`);
    expect(badge).toContain('No campaign yet');
    expect(await shadow.roots('consent-badge')).toHaveLength(1);
    // The docked composer outlives the navigation, and so does its warning.
    expect(await shadow.text('phi-warning', '.warning-box')).toContain('PHI detected');
    await shot(sf, '05-navigation-opted-out');
    await sf.click(`a[data-nav="${authorizedContact.id}"]`);
    await shadow.waitForText('consent-badge', '.badge', (t) => t.includes('Authorized'));
    expect(await shadow.roots('consent-badge')).toHaveLength(1);
  });

  let campaignId: string;

  it('submits a campaign for approval from the compose panel, and the connector holds it pending', async () => {
    await shadow.click('compose-panel', 'button[name=open-compose]');
    await shadow.select('compose-panel', 'select[name=template]', world.templateId);
    // The preview is rendered for the connector's made-up sample patient, never for this contact.
    const preview = await shadow.waitForText('compose-panel', '[data-part=preview]', (t) => t.includes('Hello Alex'));
    expect(preview).toContain('Our flu clinic is open');
    expect(preview).not.toContain('Zephyrine');
    expect(await shadow.text('compose-panel', '[data-part=scan]')).toBe('PHI scan: nothing found in the template text.');
    const forecast = await shadow.waitForText('compose-panel', '[data-part=forecast]', (t) => t.includes('recipient'));
    expect(forecast).toContain('1 recipient(s): 1 over verified TLS, 0 by escrow notice, 0 held, 0 suppressed');
    await shadow.type('compose-panel', 'input[name=campaign-name]', 'Flu clinic for this contact');
    await shadow.click('compose-panel', 'button[name=submit]');
    const status = await shadow.waitForText('compose-panel', '[data-part=status]', (t) => t.includes('Submitted'));
    expect(status).toContain('pending-approval');
    await shot(sf, '06-compose-submitted');

    const pending = (await world.sending.campaigns.list(world.sessions.marketer, { status: 'pending-approval' })).filter((c) => c.name === 'Flu clinic for this contact');
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ createdBy: users.marketer.username, purpose: 'marketing', deliveryMode: 'tls-or-escrow', audience: { kind: 'contact', crmId: authorizedContact.id } });
    campaignId = pending[0]!.id;
    expect(status).toContain(`campaign ${campaignId}`);
  });

  it('lets the clinician approve it on the EHR page, and the connector holds it approved', async () => {
    const popup = await extensionPage('popup/index.html');
    await popup.click('button[name=sign-out]');
    await signIn(popup, users.clinician);
    await popup.locator('button[name=open-side-panel]').waitFor();
    await popup.close();

    const ehr = await context.newPage();
    await ehr.goto(`https://${ehrHost}/`);
    const ehrShadow = await ClosedShadow.attach(ehr);
    await ehrShadow.click('approval-queue', 'button[name=open-approvals]');
    const card = await ehrShadow.waitForText('approval-queue', 'article.card', (t) => t.includes('Flu clinic for this contact'));
    expect(card).toContain('marketing');
    expect(card).toContain('Verified TLS, else escrow-portal notice');
    expect(card).toContain('1 recipient(s)');
    expect(card).toContain('Our flu clinic is open');
    await shot(ehr, '07-ehr-approval-queue');
    await ehrShadow.type('approval-queue', 'textarea[name=comment]', 'Fine to send.');
    await ehrShadow.click('approval-queue', 'button[name=approve]');
    await ehrShadow.waitForText('approval-queue', '[data-decided]', (t) => t.includes('approved'));
    await shot(ehr, '08-ehr-approved');

    const campaign = await world.sending.campaigns.get(world.sessions.clinician, campaignId);
    expect(campaign).toMatchObject({ status: 'approved', approvedBy: users.clinician.username });
    const decisions = await world.sending.campaigns.decisions(world.sessions.clinician, campaignId);
    expect(decisions.at(-1)).toMatchObject({ decision: 'approved', by: users.clinician.username, role: 'clinician', comment: 'Fine to send.' });
  });

  it('leaves no canary PHI in extension storage, connector URLs, the console or our host attributes', async () => {
    const dump = await worker.evaluate(async () => {
      const api = (globalThis as unknown as { chrome: { storage: { local: { get(k: null): Promise<object> }; session: { get(k: null): Promise<object> } } } }).chrome;
      return JSON.stringify({ local: await api.storage.local.get(null), session: await api.storage.session.get(null) });
    });
    expect(dump).toContain(world.url); // the dump is real: the connector URL (not PHI) is there
    // Every request the connector answered during the browser steps (look-ups by CRM id, compose, approvals).
    expect(world.requests.some((r) => r.url.startsWith('/api/v1/patients/lookup?crmId='))).toBe(true);
    expect(world.requests.some((r) => r.method === 'POST' && r.url === `/api/v1/campaigns/${campaignId}/approve` && r.status === 200)).toBe(true);
    const urls = world.requests.map((r) => r.url).join('\n');
    const attributes = await sf.evaluate(() =>
      [...document.querySelectorAll('[data-secure-outreach]')].map((e) => e.getAttributeNames().map((n) => `${n}=${e.getAttribute(n)}`).join(' ')).join('\n'),
    );
    for (const canary of canaries) {
      expect(dump).not.toContain(canary);
      expect(urls).not.toContain(canary);
      expect(consoleLines.join('\n')).not.toContain(canary);
      expect(attributes).not.toContain(canary);
    }
    expect(attributes.split('\n').every((line) => /^data-secure-outreach=[a-z-]+$/.test(line))).toBe(true);
  });
});
