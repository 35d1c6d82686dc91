// @vitest-environment happy-dom
// The clinician's approval queue against a real connector: what the clinician sees, approve, and reject only with a comment.
import { h, render } from 'preact';
import { act } from 'preact/test-utils';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ConnectorClient } from '../../extension/connector-client.js';
import { ApprovalGate } from '../../extension/ui/approval-gate.js';
import { ApprovalQueue } from '../../extension/ui/approval-queue.js';
import { users } from '../e2e/support/outreach-fixtures.js';
import { signedInClient, startTestConnector, type TestConnector } from './support/connector-client.js';

describe('approval queue', () => {
  let world: TestConnector;
  let a1cTemplateId: string;
  let n = 0;
  let name: string;
  let marketer: ConnectorClient;
  let clinician: ConnectorClient;
  let host: HTMLElement;
  let id: string;

  beforeAll(async () => {
    world = await startTestConnector();
    [marketer, clinician] = await Promise.all([signedInClient(world, users.marketer), signedInClient(world, users.clinician)]);
    a1cTemplateId = (
      await marketer.call('createTemplate', {
        body: { name: 'A1C check-in (approval queue)', purpose: 'screening-reminder', subject: 'Time for your check-in', preheader: '', body: '<p>Hello [first name|there], your last result was [last a1c].</p><p>[unsubscribe link]</p>' },
      })
    ).id;
  }, 60_000);
  afterAll(() => world?.close());
  beforeEach(async () => {
    // Each test decides its own campaign; the ones decided before have left the queue.
    name = `A1C screening ${++n}`;
    const draft = await marketer.call('createCampaign', {
      body: { name, templateId: a1cTemplateId, audience: { kind: 'segment', segmentId: world.segmentId }, purpose: 'screening-reminder', deliveryMode: 'escrow' },
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
    expect(text).toContain(name);
    expect(text).toContain('screening-reminder');
    expect(text).toContain('Always through the escrow portal');
    expect(text).toContain('Adults in Massachusetts v1 · 8 recipient(s)');
    expect(text).toContain('"state"');
    expect(text).toContain('Hello [first name|there], your last result was [last a1c].');
    expect(host.textContent).toMatch(/Waiting for approval \(\d+\)/);
  });

  it('approves with an optional comment, and the connector records the clinician', async () => {
    await comment('Reviewed the audience.');
    button('approve').click();
    await vi.waitFor(() => expect(host.querySelector(`[data-decided="${id}"]`)?.textContent).toBe(`${name}: approved`));
    expect(card()).toBeNull();
    const campaign = await clinician.call('getCampaign', { params: { id } });
    expect(campaign.status).toBe('approved');
    expect(campaign.approvals.at(-1)).toMatchObject({ by: users.clinician.username, decision: 'approved', comment: 'Reviewed the audience.' });
  });

  it('rejects only with a comment', async () => {
    await act(() => button('reject').click());
    expect(card()!.querySelector('[role=alert]')!.textContent).toBe('A rejection needs a comment for the marketer.');
    expect((await clinician.call('getCampaign', { params: { id } })).status).toBe('pending-approval');
    await comment('Lab values in a reminder need tls-required.');
    button('reject').click();
    await vi.waitFor(() => expect(host.querySelector(`[data-decided="${id}"]`)?.textContent).toBe(`${name}: rejected`));
    const campaign = await clinician.call('getCampaign', { params: { id } });
    expect(campaign.status).toBe('rejected');
    expect(campaign.approvals.at(-1)).toMatchObject({ by: users.clinician.username, decision: 'rejected', comment: 'Lab values in a reminder need tls-required.' });
  });

  it('shows the connector error when the campaign was decided elsewhere', async () => {
    await clinician.call('approveCampaign', { params: { id }, body: {} });
    button('approve').click();
    // The connector's own refusal, as it words it.
    await vi.waitFor(() => expect(card()!.querySelector('[role=alert]')?.textContent).toMatch(/approved/));
    expect((await clinician.call('getCampaign', { params: { id } })).status).toBe('approved');
  });

  it('shows the queue to a clinician only: a marketer is told who approves', async () => {
    const other = document.createElement('div');
    document.body.append(other);
    render(h(ApprovalGate, { client: marketer }), other);
    await vi.waitFor(() => expect(other.querySelector('[data-part=role]')?.textContent).toBe('Approving campaigns needs the clinician role; you are signed in as marketer.'));
    expect(other.querySelector('button[name=approve]')).toBeNull();
    render(null, other);
    render(h(ApprovalGate, { client: clinician }), other);
    await vi.waitFor(() => expect(other.querySelector(`[data-campaign="${id}"]`)).not.toBeNull());
    render(null, other);
    other.remove();
  });
});
