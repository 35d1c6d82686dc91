// @vitest-environment happy-dom
// The compose panel against a real connector: masked preview, scan, forecast, submit for approval, send an approved campaign.
import { h, render } from 'preact';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ConnectorClient } from '../../extension/connector-client.js';
import { ComposePanel, htmlToText } from '../../extension/ui/compose-panel.js';
import { authorizedContact, users } from '../e2e/support/outreach-fixtures.js';
import { signedInClient, startTestConnector, type TestConnector } from './support/connector-client.js';

const record = { object: 'Contact' as const, recordId: authorizedContact.id };

describe('compose panel', () => {
  let world: TestConnector;
  let client: ConnectorClient;
  let clinician: ConnectorClient;
  let a1cTemplateId: string;
  let host: HTMLElement;
  beforeAll(async () => {
    world = await startTestConnector();
    [client, clinician] = await Promise.all([signedInClient(world, users.marketer), signedInClient(world, users.clinician)]);
    // A template with a clinical merge tag: it may go only over verified TLS or through the escrow portal.
    a1cTemplateId = (
      await client.call('createTemplate', {
        body: { name: 'A1C check-in (compose)', purpose: 'screening-reminder', subject: 'Time for your check-in', preheader: '', body: '<p>Hello [first name|there], your last result was [last a1c].</p><p>[unsubscribe link]</p>' },
      })
    ).id;
  }, 60_000);
  afterAll(() => world?.close());
  beforeEach(() => {
    host = document.createElement('div');
    document.body.append(host);
  });
  afterEach(() => {
    render(null, host);
    host.remove();
  });

  const q = <T extends Element>(sel: string) => host.querySelector<T>(sel);
  const choose = (sel: string, value: string) => {
    const select = q<HTMLSelectElement>(sel)!;
    select.value = value;
    select.dispatchEvent(new Event('change', { bubbles: true }));
  };
  const ready = () => vi.waitFor(() => expect(q<HTMLOptionElement>(`select[name=template] option[value="${world.templateId}"]`)).not.toBeNull());
  const campaignNamed = async (name: RegExp | string) =>
    (await client.call('listCampaigns', { query: {} })).campaigns.filter((c) => (typeof name === 'string' ? c.name === name : name.test(c.name)));

  it('shows a masked preview, the scan and the forecast for this contact, then submits for approval', async () => {
    render(h(ComposePanel, { client, record, onClose: () => undefined }), host);
    await ready();
    expect(q<HTMLButtonElement>('button[name=submit]')!.disabled).toBe(true);
    choose('select[name=template]', world.templateId);
    // Rendered for the connector's made-up sample patient, never for this contact.
    await vi.waitFor(() => expect(q('[data-part=preview]')?.textContent).toContain('Hello Alex,'));
    expect(q('[data-part=preview]')!.textContent).not.toContain('Zephyrine');
    expect(q('[data-part=scan]')!.textContent).toBe('PHI scan: nothing found in the template text.');
    await vi.waitFor(() => expect(q('[data-part=forecast]')?.textContent).toContain('1 recipient(s): 1 over verified TLS, 0 by escrow notice, 0 held, 0 suppressed'));
    q<HTMLButtonElement>('button[name=submit]')!.click();
    await vi.waitFor(() => expect(q('[data-part=status]')?.textContent).toContain('Submitted for clinician approval'));
    const [campaign] = await campaignNamed(/^Flu clinic invitation \d{4}-\d{2}-\d{2}$/);
    expect(campaign).toMatchObject({ status: 'pending-approval', audience: { kind: 'contact', count: 1 }, purpose: 'marketing', deliveryMode: 'tls-or-escrow', createdBy: users.marketer.username });
    expect(q('[data-part=status]')!.textContent).toContain(`campaign ${campaign!.id}, pending-approval`);
  });

  it('targets a segment and refuses a delivery mode the template does not allow', async () => {
    render(h(ComposePanel, { client, record: null, onClose: () => undefined }), host);
    await ready();
    expect(q('input[value=contact]')).toBeNull();
    choose('select[name=template]', a1cTemplateId);
    await vi.waitFor(() => expect(q<HTMLOptionElement>(`select[name=segment] option[value="${world.segmentId}"]`)).not.toBeNull());
    choose('select[name=segment]', world.segmentId);
    await vi.waitFor(() => expect(q('[data-part=forecast] .error')?.textContent).toMatch(/tls-required or escrow/));
    expect(q<HTMLButtonElement>('button[name=submit]')!.disabled).toBe(true);
    choose('select[name=delivery-mode]', 'escrow');
    // The seeded segment holds 8 adults in Massachusetts: a screening reminder needs no marketing authorization, so only
    // the contact who opted out of e-mail is suppressed; the other 7 get an escrow-portal notice.
    await vi.waitFor(() => expect(q('[data-part=forecast]')?.textContent).toContain('7 recipient(s): 0 over verified TLS, 7 by escrow notice, 0 held, 1 suppressed'));
    expect(q('[data-part=forecast] .error')).toBeNull();
    expect(q<HTMLButtonElement>('button[name=submit]')!.disabled).toBe(false);
  });

  it('sends an approved campaign', async () => {
    const draft = await client.call('createCampaign', {
      body: { name: 'Approved flu', templateId: world.templateId, audience: { kind: 'segment', segmentId: world.segmentId }, purpose: 'marketing', deliveryMode: 'tls-or-escrow' },
    });
    await client.call('submitCampaign', { params: { id: draft.id } });
    await clinician.call('approveCampaign', { params: { id: draft.id }, body: {} });
    render(h(ComposePanel, { client, record, onClose: () => undefined }), host);
    await vi.waitFor(() => expect(host.textContent).toContain('Approved flu · 8 recipient(s)'));
    // Other files' approved campaigns may be listed too: send this one.
    const row = [...host.querySelectorAll('.row')].find((r) => r.textContent?.startsWith('Approved flu · '))!;
    row.querySelector('button')!.click();
    await vi.waitFor(() => expect(q('[data-part=status]')?.textContent).toContain('Sending "Approved flu" (scheduled)'));
    expect((await client.call('getCampaign', { params: { id: draft.id } })).status).toBe('scheduled');
  });

  it('tells a clinician that composing needs the marketer role', async () => {
    render(h(ComposePanel, { client: clinician, record, onClose: () => undefined }), host);
    await vi.waitFor(() => expect(q('[data-part=status]')?.textContent).toBe('Composing campaigns needs the marketer role; you are signed in as clinician.'));
    expect(q('select[name=template]')).toBeNull();
  });

  it('turns template HTML into text without interpreting it', () => {
    expect(htmlToText('<p>Hello&nbsp;{{patient.firstName}},</p><p>A &amp; B<br>C</p><script>x()</script>')).toBe('Hello {{patient.firstName}},\nA & B\nC\nx()');
  });
});
