// End to end in real Chromium: the fake EHR's page frames the SMART approval app, the EHR launch runs (PKCE, state, id_token), and the clinician approves; an approval recorded with the Practitioner.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Frame, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSmartApp } from '../../extension/smart-app/vite.config.js';
import { linkedPractitioner, startSmartWorld, unlinkedPractitioner, type SmartWorld } from '../connector/smart/smart-world.js';

const chromiumPath = '/usr/bin/chromium';
const ci = process.env.CI === 'true';
const haveChromium = existsSync(chromiumPath);
if (!haveChromium && !ci) {
  process.stderr.write(`\n!!! SMART launch e2e SKIPPED: ${chromiumPath} is missing (under CI=true this is a failure) !!!\n\n`);
}

const artifacts = resolve(import.meta.dirname, '../artifacts/smart');
const wait = { timeout: 60_000 };

describe.runIf(haveChromium || ci)('SMART approval app launched by the EHR, in Chromium', () => {
  let work: string;
  let world: SmartWorld;
  let context: BrowserContext;
  const consoleLines: string[] = [];

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${chromiumPath} is missing: the SMART launch e2e cannot run under CI`);
    work = mkdtempSync(join(tmpdir(), 'outreach-smart-e2e-'));
    rmSync(artifacts, { recursive: true, force: true });
    mkdirSync(artifacts, { recursive: true });
    const assetsDir = await buildSmartApp(join(work, 'smart-app'));
    // The fake EHR speaks plain HTTP on loopback here, so the browser trusts it without a certificate exception.
    world = await startSmartWorld('pglite', { https: false, assetsDir });
    context = await chromium.launchPersistentContext(join(work, 'profile'), {
      executablePath: chromiumPath,
      headless: false,
      viewport: { width: 1100, height: 860 },
      args: [
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    context.on('console', (msg) => consoleLines.push(msg.text()));
  }, 180_000);

  afterAll(async () => {
    await context?.close();
    await world?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const shot = (page: Page, name: string) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
  /** The app frame inside the EHR page, once it has reached /smart/app. */
  const appFrame = async (page: Page): Promise<Frame> => {
    for (let i = 0; i < 600; i++) {
      const frame = page.frames().find((f) => f.url().endsWith('/smart/app'));
      if (frame) return frame;
      await page.waitForEvent('framenavigated', wait);
    }
    throw new Error('the app frame never reached /smart/app');
  };

  it('runs the EHR launch inside the EHR page and records an approval signed by the Practitioner', async () => {
    const page = await context.newPage();
    const navigations: string[] = [];
    page.on('framenavigated', (f) => navigations.push(f.url()));
    await page.goto(world.ehr.ehrPageUrl(linkedPractitioner));
    const app = await appFrame(page);
    await app.locator('[data-identity]').getByText(`${linkedPractitioner} · Fake EHR · signed in as clinician`).waitFor(wait);
    const card = app.locator(`[data-campaign="${world.campaign.id}"]`);
    await card.waitFor(wait);
    // The content with its PHI findings, the audience rule and size, purpose, mode and the forecast.
    await card.locator('[data-field="Body"]').getByText('1 PHI finding(s)').waitFor(wait);
    await expect(card.locator('[data-forecast="tls"] td').last().textContent()).resolves.toBe('2');
    await expect(card.locator('[data-forecast="held"] td').last().textContent()).resolves.toBe('1');
    const text = await card.textContent();
    expect(text).toContain('Flu shots are here');
    expect(text).toContain('marketing');
    expect(text).toContain('Only over verified TLS');
    expect(text).toContain('first patients v1');
    expect(text).toMatch(/4\s*recipient\(s\)/);
    expect(text).toContain('diabetes');
    await shot(page, '01-ehr-frames-approval-app');

    await card.locator('textarea[name=comment]').fill('Reviewed in the EHR: fine to send.');
    await card.locator('button[name=approve]').click();
    await app.locator(`[data-decided="${world.campaign.id}"]`).getByText('approved').waitFor(wait);
    await shot(page, '02-approved-in-ehr');

    const decisions = await world.w.sending.campaigns.decisions(world.w.sessions.clinician, world.campaign.id);
    expect(decisions.at(-1)).toMatchObject({ decision: 'approved', by: 'clinician', practitioner: linkedPractitioner, iss: world.ehr.iss, comment: 'Reviewed in the EHR: fine to send.' });
    // No URL the browser visited carried PHI: only the opaque launch id, state, code and the app's bare path.
    expect(navigations.some((u) => u.endsWith('/smart/app'))).toBe(true);
    for (const u of navigations) expect(u).not.toMatch(/Patient\/|diabetes|@valid\.test/);
    // The cookie the browser holds is HttpOnly: the page's script cannot read it.
    expect(await app.evaluate(() => document.cookie)).toBe('');
    const cookies = await context.cookies(world.base);
    expect(cookies.find((c) => c.name === 'outreach-smart')).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
    await page.close();
  });

  it('shows a practitioner linked to no clinician who they are, and no way to approve', async () => {
    const pending = await world.pendingCampaign('browser-unlinked');
    const page = await context.newPage();
    await page.goto(world.ehr.ehrPageUrl(unlinkedPractitioner));
    const app = await appFrame(page);
    await app.locator('[data-unlinked]').getByText(`Your EHR identity (${unlinkedPractitioner}) is not linked to a clinician account`).waitFor(wait);
    expect(await app.locator('button[name=approve]').count()).toBe(0);
    await shot(page, '03-unlinked-practitioner');
    expect((await world.w.sending.campaigns.get(world.w.sessions.clinician, pending.id)).status).toBe('pending-approval');
    await page.close();
  });

  it('shows a refused launch (unknown iss) as a clear error page', async () => {
    const page = await context.newPage();
    const res = await page.goto(`${world.base}/smart/launch?iss=${encodeURIComponent('https://rogue-ehr.example/fhir')}&launch=abc`);
    expect(res?.status()).toBe(400);
    await page.getByText('SMART_UNKNOWN_ISS').waitFor(wait);
    await page.getByText('this EHR (iss) is not registered for app launch').waitFor(wait);
    await shot(page, '04-unknown-iss-refused');
    await page.close();
  });

  it('cannot be framed by a page outside the registered EHR origins', async () => {
    const page = await context.newPage();
    const refused = new Promise<string>((resolveRefusal) => {
      page.on('console', (msg) => {
        if (/frame-ancestors/.test(msg.text())) resolveRefusal(msg.text());
      });
    });
    // The same fake EHR page, reached as http://localhost: an origin no EHR registration names.
    await page.goto(world.ehr.ehrPageUrl(linkedPractitioner).replace('127.0.0.1', 'localhost'));
    expect(await refused).toContain('frame-ancestors');
    expect(page.frames().some((f) => f.url().endsWith('/smart/app'))).toBe(false);
    await shot(page, '05-framing-refused-outside-ehr');
    await page.close();
  });
});
