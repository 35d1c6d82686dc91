// Synthetic people, users, a template and a segment for the extension's tests against the real connector, with canary values that must never reach extension storage, URLs or logs.
import type { ConnectorWorldInput } from './connector-world.js';
import type { ContactFixture } from './lightning-page.js';

export const authorizedContact: ContactFixture = {
  id: '003Dn00000A1b2cAAB',
  name: 'Zephyrine Quillfeather',
  email: 'zephyrine.quillfeather@valid.test',
  phone: '(617) 555-0142',
  title: 'Patient',
};
export const optedOutContact: ContactFixture = {
  id: '003Dn00000Z9y8xAAB',
  name: 'Barnabus Wexley-Thorn',
  email: 'b.wexleythorn@valid.test',
  phone: '(617) 555-0199',
  title: 'Patient',
};

/** What the marketer types into the native composer: a diagnosis, an ICD-10 code and a lab value. */
export const composerText = 'Hi Zephyrine, your type 2 diabetes (E11.9) and A1C of 9.2% need a follow-up visit.';

/** Strings that are PHI in this scenario: none may appear in extension storage, URLs or console output. */
export const canaries = [
  authorizedContact.name,
  'Zephyrine',
  'Quillfeather',
  authorizedContact.email,
  authorizedContact.phone,
  optedOutContact.name,
  optedOutContact.email,
  'Barnabus',
  'Wexley-Thorn',
  '1961-04-09',
  '1958-11-23',
  'diabetes',
  'E11.9',
  '9.2%',
];

export const users = {
  /** The connector names its first admin `admin`; the world changes its one-time password to this one. */
  admin: { username: 'admin', password: 'admin-password-e2e', role: 'admin' as const },
  marketer: { username: 'maria.marketer', password: 'marketer-password-e2e', role: 'marketer' as const },
  clinician: { username: 'dr.chen', password: 'clinician-password-e2e', role: 'clinician' as const },
};

/** The real connector's seed: the two contacts with their consent, other adults, a template, a segment and a campaign already sent. */
export const connectorSeed: Omit<ConnectorWorldInput, 'extensionOrigin'> = {
  usernames: { marketer: users.marketer.username, clinician: users.clinician.username },
  passwords: { admin: users.admin.password, marketer: users.marketer.password, clinician: users.clinician.password },
  patients: [
    { contact: authorizedContact, given: 'Zephyrine', family: 'Quillfeather', birthDate: '1961-04-09', consent: { kind: 'authorized', expiresAt: '2027-06-30T00:00:00.000Z' } },
    { contact: optedOutContact, given: 'Barnabus', family: 'Wexley-Thorn', birthDate: '1958-11-23', consent: { kind: 'opted-out' } },
  ],
  extraPatients: 6,
  template: {
    name: 'Flu clinic invitation',
    purpose: 'marketing',
    subject: 'Our flu clinic is open',
    preheader: 'Walk in any weekday',
    body: '<p>Hello [first name|there],</p><p>Our walk-in flu clinic is open weekdays 8am to 6pm.</p><p>[unsubscribe link]</p>',
  },
  segment: { name: 'Adults in Massachusetts', definition: { all: [{ type: 'age', min: 18 }, { type: 'state', value: 'MA' }] } },
  previousCampaign: 'Flu shot reminders 2026',
};
