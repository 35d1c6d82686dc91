// @vitest-environment happy-dom
// The consent badge: what it says for each consent state, and where it goes on a Lightning page with hidden pages left behind.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { httpClient } from '../../extension/background/connector-http.js';
import { consentBadge, findEmailField } from '../../extension/features/consent-badge.js';
import { recordRoute } from '../../extension/page/record-route.js';
import { describeConsent } from '../../extension/ui/consent-badge.js';
import type { PatientSummary } from '../../connector/api/contract.js';
import { authorizedContact, users } from '../e2e/support/outreach-fixtures.js';
import { captureClosedRoots } from './support/closed-roots.js';
import { recordingFetch, signedInClient, startTestConnector, type TestConnector } from './support/connector-client.js';

/** Summaries as the connector's patient look-up answers them. */
const summary: PatientSummary = {
  found: true,
  patientId: '1001',
  consent: {
    marketingAuthorized: true,
    marketing: { state: 'active', grantedAt: '2025-06-30T00:00:00.000Z', expiresAt: '2027-06-30T00:00:00.000Z' },
    emailOptedOut: false,
    optedOutAt: null,
  },
  lastCampaign: { id: '17', name: 'Flu shot reminders 2026', sentAt: '2026-10-02T15:00:00.000Z' },
};
const optedOut: PatientSummary = {
  found: true,
  patientId: '1002',
  consent: { marketingAuthorized: false, marketing: { state: 'revoked', grantedAt: '2024-01-10T00:00:00.000Z', expiresAt: null }, emailOptedOut: true, optedOutAt: '2026-09-14T00:00:00.000Z' },
  lastCampaign: null,
};

describe('describeConsent', () => {
  it('shows an active authorization with its expiry and the last campaign', () => {
    expect(describeConsent({ kind: 'summary', summary })).toEqual({
      tone: 'ok',
      label: 'Authorized for marketing · expires 2027-06-30',
      detail: 'Last campaign: Flu shot reminders 2026 (2026-10-02)',
    });
  });

  it('puts an opt-out above any authorization', () => {
    expect(describeConsent({ kind: 'summary', summary: optedOut })).toMatchObject({ tone: 'bad', label: 'Opted out 2026-09-14', detail: 'No campaign yet' });
  });

  it('names why marketing is not authorized', () => {
    const expired = { ...summary, consent: { ...summary.consent!, marketingAuthorized: false, marketing: { state: 'expired' as const, grantedAt: null, expiresAt: '2025-01-31T00:00:00.000Z' } } };
    expect(describeConsent({ kind: 'summary', summary: expired })).toMatchObject({ tone: 'warn', label: 'Not authorized for marketing · authorization expired 2025-01-31' });
    const none = { ...summary, consent: { ...summary.consent!, marketingAuthorized: false, marketing: { state: 'none' as const, grantedAt: null, expiresAt: null } } };
    expect(describeConsent({ kind: 'summary', summary: none }).label).toBe('Not authorized for marketing · no authorization on file');
  });

  it('says so when no patient matches, and when signed out', () => {
    expect(describeConsent({ kind: 'summary', summary: { found: false, patientId: null, consent: null, lastCampaign: null } }).label).toBe('No patient match');
    expect(describeConsent({ kind: 'signed-out' }).label).toMatch(/sign in/);
  });
});

const emailItem = (email: string) =>
  `<records-record-layout-item field-label="Email"><span slot="outputField"><emailui-formatted-email-contact><emailui-formatted-email-wrapper><lightning-formatted-email><a href="mailto:${email}">${email}</a></lightning-formatted-email></emailui-formatted-email-wrapper></emailui-formatted-email-contact></span></records-record-layout-item>`;

describe('consent badge on a record page', () => {
  let world: TestConnector;
  const closed = captureClosedRoots();
  beforeAll(async () => {
    world = await startTestConnector();
  }, 60_000);
  afterAll(async () => {
    closed.restore();
    await world?.close();
  });
  afterEach(() => {
    document.body.innerHTML = '';
  });

  it('finds the e-mail field of the active page only, never a hidden one left by navigation', () => {
    document.body.innerHTML = `<div class="oneContent">${emailItem('old@example.test')}</div><div class="oneContent active"><div>loading</div></div>`;
    expect(findEmailField(document)).toBeNull();
    document.querySelector('.oneContent.active')!.innerHTML = emailItem('new@example.test');
    expect(findEmailField(document)?.textContent).toBe('new@example.test');
  });

  it('waits for the progressively rendered field, then shows the consent from the connector next to it', async () => {
    document.body.innerHTML = `<div class="oneContent">${emailItem('old@example.test')}</div><div class="oneContent active"><span class="placeholder">Loading…</span></div>`;
    const url = new URL(`https://acme.lightning.force.com/lightning/r/Contact/${authorizedContact.id}/view`);
    const controller = new AbortController();
    const { fetch, calls } = recordingFetch();
    const client = await signedInClient(world, users.marketer, fetch);
    const started = consentBadge.start({ document, url, record: recordRoute(url), client, signal: controller.signal });
    document.querySelector('.oneContent.active')!.innerHTML = emailItem('z@example.test');
    await started;
    const [root] = closed.of('consent-badge');
    expect(root).toBeDefined();
    expect(root!.host.previousElementSibling?.tagName.toLowerCase()).toBe('lightning-formatted-email');
    expect(root!.host.closest('.oneContent')!.classList.contains('active')).toBe(true);
    // The connector's record of this contact (seeded: marketing granted until 2027-06-30).
    expect(root!.querySelector('.badge')!.textContent).toContain('Authorized for marketing · expires 2027-06-30');
    expect(root!.host.getAttributeNames()).toEqual(['data-secure-outreach']);
    expect(calls.at(-1)).toEqual({ method: 'GET', path: `/patients/lookup?crmId=${authorizedContact.id}`, status: 200 });

    controller.abort();
    expect(closed.of('consent-badge')).toHaveLength(0);
  });

  it('asks the user to sign in when the connector has no session', async () => {
    document.body.innerHTML = `<div class="oneContent active">${emailItem('z@example.test')}</div>`;
    const url = new URL(`https://acme.lightning.force.com/lightning/r/Contact/${authorizedContact.id}/view`);
    const client = httpClient({ baseUrl: world.url, token: () => 'expired-or-unknown-token-0000000000' });
    await consentBadge.start({ document, url, record: recordRoute(url), client, signal: new AbortController().signal });
    expect(closed.of('consent-badge')[0]!.querySelector('.badge')!.textContent).toContain('sign in to see consent');
  });
});
