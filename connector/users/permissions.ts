// The permission matrix: every operation the product has, and the roles allowed to perform it. The one place to change it.

export const roleList = ['admin', 'marketer', 'clinician'] as const;
export type Role = (typeof roleList)[number];

/**
 * Least privilege: admins run the system (endpoints, keys, users, audit, authorizations) but not marketing;
 * marketers build and send; clinicians review, approve or reject, and are the only role that previews real PHI.
 */
export const permissions = {
  // --- account (every signed-in user)
  'account.read': ['admin', 'marketer', 'clinician'],
  'account.change-password': ['admin', 'marketer', 'clinician'],
  'account.logout': ['admin', 'marketer', 'clinician'],
  // --- FHIR endpoints and ingest
  'endpoints.read': ['admin'],
  'endpoints.write': ['admin'],
  'fhir.sync': ['admin'],
  'quarantine.read': ['admin'],
  // --- keys
  'keys.read': ['admin'],
  'keys.rotate': ['admin'],
  // --- users
  'users.read': ['admin'],
  'users.write': ['admin'],
  // --- audit
  'audit.read': ['admin'],
  'audit.verify': ['admin'],
  'audit.export': ['admin'],
  // --- HIPAA authorizations
  'consent.grant': ['admin'],
  'consent.revoke': ['admin'],
  'consent.show': ['admin'],
  'consent.export': ['admin'],
  /** The badge: allowed or not for a purpose, without history or evidence. */
  'consent.status': ['admin', 'marketer', 'clinician'],
  // --- segments and templates
  'segments.read': ['marketer', 'clinician'],
  'segments.write': ['marketer'],
  'templates.read': ['marketer', 'clinician'],
  'templates.write': ['marketer'],
  // --- campaigns
  'campaigns.read': ['marketer', 'clinician'],
  'campaigns.create': ['marketer'],
  'campaigns.edit': ['marketer'],
  'campaigns.submit': ['marketer'],
  'campaigns.approve': ['clinician'],
  'campaigns.reject': ['clinician'],
  'campaigns.schedule': ['marketer'],
  /** Admins may cancel too: the emergency stop. */
  'campaigns.cancel': ['marketer', 'admin'],
  'campaigns.send': ['marketer'],
  'campaigns.report': ['marketer'],
  'approvals.read': ['clinician'],
  // --- previews
  'preview.sample': ['marketer', 'clinician'],
  'preview.phi': ['clinician'],
  // --- journeys
  'journeys.read': ['marketer', 'clinician'],
  'journeys.write': ['marketer'],
  'journeys.approve': ['clinician'],
  'journeys.activate': ['marketer'],
  // --- delivery, senders, portal
  'delivery.read': ['admin', 'marketer'],
  'delivery.release': ['admin'],
  'senders.read': ['admin', 'marketer'],
  'senders.write': ['admin'],
  'portal.admin': ['admin'],
  // --- Salesforce
  'salesforce.read': ['admin', 'marketer'],
  'salesforce.connect': ['admin'],
  'salesforce.sync': ['admin', 'marketer'],
} as const satisfies Record<string, readonly Role[]>;

export type Operation = keyof typeof permissions;
export const operationList = Object.keys(permissions) as Operation[];

export function isRole(value: string): value is Role {
  return (roleList as readonly string[]).includes(value);
}

export function isOperation(value: string): value is Operation {
  return Object.hasOwn(permissions, value);
}

/** True when `role` may perform `operation`; unknown operations are denied. */
export function can(role: Role, operation: Operation): boolean {
  return isOperation(operation) && (permissions[operation] as readonly Role[]).includes(role);
}
