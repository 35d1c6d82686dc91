// Journeys over HTTP: a marketer creates, a clinician approves this version, the marketer pauses and resumes, anyone allowed reads per-step counts; bad input names the field, other roles are refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiPrefix } from '../../../connector/api/contract.js';
import { startApiWorld, type ApiWorld } from '../api/api-world.js';

const fieldOf = (json: any): string | undefined => json?.issue?.[0]?.expression?.[0];

describe('journeys API', () => {
  let world: ApiWorld;
  beforeAll(async () => {
    world = await startApiWorld('pglite');
  }, 120_000);
  afterAll(async () => world?.close());
  const call = (method: string, path: string, role: 'admin' | 'marketer' | 'clinician', body?: unknown) =>
    world.call(method, `${apiPrefix}${path}`, { token: world.tokens[role], ...(body !== undefined ? { body } : {}) });

  it('creates a draft, approves this version, pauses, resumes and counts per step', async () => {
    const template = await call('POST', '/templates', 'marketer', { name: 'Refill due', purpose: 'refill-reminder', subject: 'A note from your practice', body: '<p>Your prescription can be refilled soon.</p>' });
    expect(template.status).toBe(201);
    const input = {
      name: 'Refill reminders',
      purpose: 'refill-reminder',
      trigger: { kind: 'refill-due', daysBefore: 5 },
      steps: [
        { kind: 'send', name: 'refill', templateId: template.json.id },
        { kind: 'wait', name: 'week', hours: 168 },
        { kind: 'branch', name: 'booked', on: 'booked', then: 'exit', else: 'nudge' },
        { kind: 'send', name: 'nudge', templateId: template.json.id },
      ],
    };
    expect((await call('POST', '/journeys', 'clinician', input)).status).toBe(403);
    const created = await call('POST', '/journeys', 'marketer', input);
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ status: 'draft', revision: 1, deliveryMode: 'tls-or-escrow', trigger: { kind: 'refill-due', daysBefore: 5 }, approvedBy: null });
    expect(created.json.steps[0]).toEqual({ kind: 'send', name: 'refill', templateVersionId: expect.any(Number) });
    const id = created.json.id as string;

    expect((await call('POST', `/journeys/${id}/approve`, 'marketer', {})).status).toBe(403);
    expect((await call('POST', `/journeys/${id}/approve`, 'clinician', { revision: 2 })).json.issue[0].details.coding[0].code).toBe('APPROVAL_VOID');
    const approved = await call('POST', `/journeys/${id}/approve`, 'clinician', { revision: 1 });
    expect(approved.json).toMatchObject({ status: 'active', approvedBy: 'clinician' });
    expect((await call('POST', `/journeys/${id}/pause`, 'marketer')).json.status).toBe('paused');
    expect((await call('POST', `/journeys/${id}/resume`, 'marketer')).json.status).toBe('active');
    expect((await call('POST', `/journeys/${id}/resume`, 'marketer')).status).toBe(409);

    const counts = await call('GET', `/journeys/${id}/counts`, 'clinician');
    expect(counts.json.steps.map((s: { name: string; kind: string; waiting: number }) => [s.name, s.kind, s.waiting])).toEqual([
      ['refill', 'send', 0], ['week', 'wait', 0], ['booked', 'branch', 0], ['nudge', 'send', 0],
    ]);
    expect(counts.json.enrollments).toEqual({ waiting: 0, done: 0, exited: {} });
    expect((await call('GET', '/journeys', 'marketer')).json.journeys.map((j: { id: string }) => j.id)).toEqual([id]);
    expect((await call('GET', `/journeys/${id}`, 'admin')).status).toBe(403);
    expect((await call('GET', '/journeys/424242', 'marketer')).status).toBe(404);
  }, 60_000);

  it('refuses a journey that is not one, naming the field', async () => {
    const bad = await call('POST', '/journeys', 'marketer', { name: 'Nightly', purpose: 'marketing', trigger: { kind: 'nightly-rebuild' }, steps: [{ kind: 'exit', name: 'done' }] });
    expect(bad.status).toBe(400);
    expect(fieldOf(bad.json)).toMatch(/^trigger/);
    const loop = await call('POST', '/journeys', 'marketer', {
      name: 'Loop', purpose: 'marketing', trigger: { kind: 'appointment-booked' },
      steps: [{ kind: 'send', name: 'a', templateId: '1' }, { kind: 'branch', name: 'b', on: 'opened', then: 'a', else: 'exit' }],
    });
    expect(loop.status).toBe(400);
    const unknownTemplate = await call('POST', '/journeys', 'marketer', { name: 'Ghost', purpose: 'marketing', trigger: { kind: 'appointment-booked' }, steps: [{ kind: 'send', name: 'a', templateId: '999999' }] });
    expect(unknownTemplate.status).toBe(404);
    expect(fieldOf(unknownTemplate.json)).toBe('steps.0.templateId');
  });
});
