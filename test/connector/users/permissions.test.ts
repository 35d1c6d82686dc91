// The role matrix, asserted cell by cell against a table written out here independently of permissions.ts.
import { describe, expect, it } from 'vitest';
import { authorize, type Session } from '../../../connector/users/authorize.js';
import { operationList, roleList, type Operation, type Role } from '../../../connector/users/permissions.js';

/** a = admin, m = marketer, c = clinician. */
const expected: Record<string, string> = {
  'account.read': 'amc',
  'account.change-password': 'amc',
  'account.logout': 'amc',
  'endpoints.read': 'a',
  'endpoints.write': 'a',
  'fhir.sync': 'a',
  'quarantine.read': 'a',
  'keys.read': 'a',
  'keys.rotate': 'a',
  'users.read': 'a',
  'users.write': 'a',
  'audit.read': 'a',
  'audit.verify': 'a',
  'audit.export': 'a',
  'consent.grant': 'a',
  'consent.revoke': 'a',
  'consent.show': 'a',
  'consent.export': 'a',
  'consent.status': 'amc',
  'segments.read': 'mc',
  'segments.write': 'm',
  'templates.read': 'mc',
  'templates.write': 'm',
  'campaigns.read': 'mc',
  'campaigns.create': 'm',
  'campaigns.edit': 'm',
  'campaigns.submit': 'm',
  'campaigns.approve': 'c',
  'campaigns.reject': 'c',
  'campaigns.schedule': 'm',
  'campaigns.cancel': 'am',
  'campaigns.send': 'm',
  'campaigns.report': 'm',
  'approvals.read': 'c',
  'preview.sample': 'mc',
  'preview.phi': 'c',
  'journeys.read': 'mc',
  'journeys.write': 'm',
  'journeys.approve': 'c',
  'journeys.activate': 'm',
  'delivery.read': 'am',
  'delivery.release': 'a',
  'senders.read': 'am',
  'senders.write': 'a',
  'portal.admin': 'a',
  'salesforce.read': 'am',
  'salesforce.connect': 'a',
  'salesforce.sync': 'am',
};
const letter: Record<Role, string> = { admin: 'a', marketer: 'm', clinician: 'c' };

const now = new Date('2026-06-01T12:00:00Z');
const session = (role: Role, over: Partial<Session> = {}): Session => ({
  id: '1',
  userId: '7',
  username: `${role}-user`,
  role,
  createdAt: new Date(now.getTime() - 60_000),
  lastSeenAt: now,
  idleExpiresAt: new Date(now.getTime() + 15 * 60_000),
  absoluteExpiresAt: new Date(now.getTime() + 12 * 3_600_000),
  mustChangePassword: false,
  ...over,
});

describe('role matrix', () => {
  it('lists exactly the operations of the expected table', () => {
    expect([...operationList].sort()).toEqual(Object.keys(expected).sort());
  });

  const cells = operationList.flatMap((op) => roleList.map((role) => [op, role, expected[op]?.includes(letter[role]) ?? false] as const));

  it.each(cells)('%s as %s: allowed=%s', (op, role, allowed) => {
    if (allowed) expect(authorize(session(role), op as Operation, now)).toMatchObject({ role });
    else expect(() => authorize(session(role), op as Operation, now)).toThrow(expect.objectContaining({ code: 'FORBIDDEN', status: 403 }));
  });

  it('keeps real PHI previews and approvals with clinicians, and keys, users and audit with admins', () => {
    const allowedFor = (op: string) => roleList.filter((r) => expected[op]!.includes(letter[r]));
    expect(allowedFor('preview.phi')).toEqual(['clinician']);
    expect(allowedFor('campaigns.approve')).toEqual(['clinician']);
    for (const op of ['keys.rotate', 'users.write', 'audit.export', 'consent.grant']) expect(allowedFor(op)).toEqual(['admin']);
  });

  it('refuses without a session, past the idle or absolute end, and before a one-time password is changed', () => {
    expect(() => authorize(undefined, 'campaigns.read', now)).toThrow(expect.objectContaining({ code: 'UNAUTHENTICATED', status: 401 }));
    expect(() => authorize(session('marketer', { idleExpiresAt: now }), 'campaigns.read', now)).toThrow(expect.objectContaining({ code: 'SESSION_EXPIRED' }));
    expect(() => authorize(session('marketer', { absoluteExpiresAt: now }), 'campaigns.read', now)).toThrow(expect.objectContaining({ code: 'SESSION_EXPIRED' }));
    expect(() => authorize(session('admin', { mustChangePassword: true }), 'users.write', now)).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }));
    expect(authorize(session('admin', { mustChangePassword: true }), 'account.change-password', now).role).toBe('admin');
    expect(() => authorize(session('admin'), 'no.such-operation' as Operation, now)).toThrow(expect.objectContaining({ code: 'FORBIDDEN' }));
  });
});
