// @vitest-environment happy-dom
// The compose panel against the contract double: masked preview, scan, forecast, submit for approval, send an approved campaign.
import { h, render } from 'preact';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ConnectorClient } from '../../extension/connector-client.js';
import { ComposePanel, htmlToText } from '../../extension/ui/compose-panel.js';
import { startContractDouble, type ContractDouble } from '../e2e/support/contract-double.js';
import { authorizedContact, seed, users } from '../e2e/support/outreach-fixtures.js';
import { signedInClient } from './support/double-client.js';

const record = { object: 'Contact' as const, recordId: authorizedContact.id };

describe('compose panel', () => {
  let double: ContractDouble;
  let client: ConnectorClient;
  let host: HTMLElement;
  beforeAll(async () => {
    double = await startContractDouble(seed);
    client = await signedInClient(double, users.marketer);
  });
  afterAll(() => double.close());
  beforeEach(() => {
    double.campaigns.clear();
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
  const ready = () => vi.waitFor(() => expect(q<HTMLOptionElement>('select[name=template] option[value=t-flu]')).not.toBeNull());

  it('shows a masked preview, the scan and the forecast for this contact, then submits for approval', async () => {
    render(h(ComposePanel, { client, record, onClose: () => undefined }), host);
    await ready();
    expect(q<HTMLButtonElement>('button[name=submit]')!.disabled).toBe(true);
    choose('select[name=template]', 't-flu');
    await vi.waitFor(() => expect(q('[data-part=preview]')?.textContent).toContain('Hello Z*******,'));
    expect(q('[data-part=scan]')!.textContent).toMatch(/^PHI scan/);
    await vi.waitFor(() => expect(q('[data-part=forecast]')?.textContent).toContain('1 recipient(s): 1 over verified TLS'));
    q<HTMLButtonElement>('button[name=submit]')!.click();
    await vi.waitFor(() => expect(q('[data-part=status]')?.textContent).toContain('Submitted for clinician approval'));
    const [campaign] = [...double.campaigns.values()];
    expect(campaign).toMatchObject({ status: 'pending-approval', audience: { kind: 'contact', count: 1 }, purpose: 'marketing', deliveryMode: 'tls-or-escrow' });
    expect(campaign!.name).toMatch(/^Flu clinic invitation \d{4}-\d{2}-\d{2}$/);
  });

  it('targets a segment and refuses a delivery mode the template does not allow', async () => {
    render(h(ComposePanel, { client, record: null, onClose: () => undefined }), host);
    await ready();
    expect(q('input[value=contact]')).toBeNull();
    choose('select[name=template]', 't-a1c');
    await vi.waitFor(() => expect(q<HTMLOptionElement>('select[name=segment] option[value=seg-flu]')).not.toBeNull());
    choose('select[name=segment]', 'seg-flu');
    await vi.waitFor(() => expect(q('[data-part=forecast]')?.textContent).toContain('Clinical merge tags need delivery mode tls-required or escrow.'));
    expect(q<HTMLButtonElement>('button[name=submit]')!.disabled).toBe(true);
    choose('select[name=delivery-mode]', 'escrow');
    await vi.waitFor(() => expect(q('[data-part=forecast]')?.textContent).toContain('1240 recipient(s): 0 over verified TLS, 1240 by escrow notice'));
    expect(q<HTMLButtonElement>('button[name=submit]')!.disabled).toBe(false);
  });

  it('sends an approved campaign', async () => {
    const draft = await client.call('createCampaign', { body: { name: 'Approved flu', templateId: 't-flu', audience: { kind: 'segment', segmentId: 'seg-flu' }, purpose: 'marketing' } });
    await client.call('submitCampaign', { params: { id: draft.id } });
    const clinician = await signedInClient(double, users.clinician);
    await clinician.call('approveCampaign', { params: { id: draft.id }, body: {} });
    render(h(ComposePanel, { client, record, onClose: () => undefined }), host);
    await vi.waitFor(() => expect(host.textContent).toContain('Approved flu · 1240 recipient(s)'));
    [...host.querySelectorAll('button')].find((b) => b.textContent === 'Send now')!.click();
    await vi.waitFor(() => expect(q('[data-part=status]')?.textContent).toContain('Sending "Approved flu" (scheduled)'));
    expect(double.campaigns.get(draft.id)!.status).toBe('scheduled');
  });

  it('tells a clinician that composing needs the marketer role', async () => {
    render(h(ComposePanel, { client: await signedInClient(double, users.clinician), record, onClose: () => undefined }), host);
    await vi.waitFor(() => expect(q('[data-part=status]')?.textContent).toBe('Composing campaigns needs the marketer role; you are signed in as clinician.'));
    expect(q('select[name=template]')).toBeNull();
  });

  it('turns template HTML into text without interpreting it', () => {
    expect(htmlToText('<p>Hello&nbsp;{{patient.firstName}},</p><p>A &amp; B<br>C</p><script>x()</script>')).toBe('Hello {{patient.firstName}},\nA & B\nC\nx()');
  });
});
