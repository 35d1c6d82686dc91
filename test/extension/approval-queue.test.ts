// @vitest-environment happy-dom
// The clinician's approval queue against the contract double: what the clinician sees, approve, and reject only with a comment.
import { h, render } from 'preact';
import { act } from 'preact/test-utils';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ConnectorClient } from '../../extension/connector-client.js';
import { ApprovalQueue } from '../../extension/ui/approval-queue.js';
import { startContractDouble, type ContractDouble } from '../e2e/support/contract-double.js';
import { seed, users } from '../e2e/support/outreach-fixtures.js';
import { signedInClient } from './support/double-client.js';

describe('approval queue', () => {
  let double: ContractDouble;
  let marketer: ConnectorClient;
  let clinician: ConnectorClient;
  let host: HTMLElement;
  let id: string;

  beforeAll(async () => {
    double = await startContractDouble(seed);
    marketer = await signedInClient(double, users.marketer);
    clinician = await signedInClient(double, users.clinician);
  });
  afterAll(() => double.close());
  beforeEach(async () => {
    double.campaigns.clear();
    const draft = await marketer.call('createCampaign', {
      body: { name: 'A1C screening', templateId: 't-a1c', audience: { kind: 'segment', segmentId: 'seg-flu' }, purpose: 'screening-reminder', deliveryMode: 'escrow' },
    });
    id = (await marketer.call('submitCampaign', { params: { id: draft.id } })).id;
    host = document.createElement('div');
    document.body.append(host);
    render(h(ApprovalQueue, { client: clinician }), host);
    await vi.waitFor(() => expect(host.querySelector(`[data-campaign="${id}"]`)).not.toBeNull());
  });
  afterEach(() => {
    render(null, host);
    host.remove();
  });

  const card = () => host.querySelector<HTMLElement>(`[data-campaign="${id}"]`);
  const button = (name: string) => card()!.querySelector<HTMLButtonElement>(`button[name=${name}]`)!;
  // act() flushes preact's render queue, as the frames between a user's keystrokes and click would.
  const comment = (text: string) =>
    act(() => {
      const area = card()!.querySelector<HTMLTextAreaElement>('textarea[name=comment]')!;
      area.value = text;
      area.dispatchEvent(new Event('input', { bubbles: true }));
    });

  it('shows the content, the audience definition and count, the purpose and the delivery mode', () => {
    const text = card()!.textContent!;
    expect(text).toContain('A1C screening');
    expect(text).toContain('screening-reminder');
    expect(text).toContain('Always through the escrow portal');
    expect(text).toContain('Adults seen in the last year · 1240 recipient(s)');
    expect(text).toContain('"lastVisit"');
    expect(text).toContain('Hello {{patient.firstName}}, your last result was {{lab.hba1c}}.');
    expect(host.textContent).toContain('Waiting for approval (1)');
  });

  it('approves with an optional comment, and the connector records the clinician', async () => {
    await comment('Reviewed the audience.');
    button('approve').click();
    await vi.waitFor(() => expect(host.querySelector(`[data-decided="${id}"]`)?.textContent).toBe('A1C screening: approved'));
    expect(card()).toBeNull();
    expect(double.campaigns.get(id)).toMatchObject({ status: 'approved', approvals: [{ by: users.clinician.username, decision: 'approved', comment: 'Reviewed the audience.' }] });
  });

  it('rejects only with a comment', async () => {
    await act(() => button('reject').click());
    expect(card()!.querySelector('[role=alert]')!.textContent).toBe('A rejection needs a comment for the marketer.');
    expect(double.campaigns.get(id)!.status).toBe('pending-approval');
    await comment('Lab values in a reminder need tls-required.');
    button('reject').click();
    await vi.waitFor(() => expect(host.querySelector(`[data-decided="${id}"]`)?.textContent).toBe('A1C screening: rejected'));
    expect(double.campaigns.get(id)!.approvals[0]).toMatchObject({ decision: 'rejected', comment: 'Lab values in a reminder need tls-required.' });
  });

  it('shows the connector error when the campaign was decided elsewhere', async () => {
    await clinician.call('approveCampaign', { params: { id }, body: {} });
    button('approve').click();
    await vi.waitFor(() => expect(card()!.querySelector('[role=alert]')?.textContent).toBe('campaign is approved, not pending-approval'));
  });
});
