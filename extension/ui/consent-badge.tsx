// The consent badge: whether this contact may receive marketing, opt-out, expiry and the last campaign, in one line next to the e-mail field.
import type { PatientSummary } from '../../connector/api/contract.js';

export type BadgeState =
  | { kind: 'loading' }
  | { kind: 'signed-out' }
  | { kind: 'error'; message: string }
  | { kind: 'summary'; summary: PatientSummary };

const day = (iso: string | null) => (iso ? iso.slice(0, 10) : '');

/** The words and tone of a badge, computed apart from rendering so it can be tested on its own. */
export function describeConsent(state: BadgeState): { tone: 'ok' | 'warn' | 'bad' | 'muted'; label: string; detail: string } {
  switch (state.kind) {
    case 'loading':
      return { tone: 'muted', label: 'Consent…', detail: '' };
    case 'signed-out':
      return { tone: 'muted', label: 'Secure Outreach: sign in to see consent', detail: '' };
    case 'error':
      return { tone: 'muted', label: 'Consent unavailable', detail: state.message };
  }
  const { summary } = state;
  const last = summary.lastCampaign ? `Last campaign: ${summary.lastCampaign.name} (${day(summary.lastCampaign.sentAt)})` : 'No campaign yet';
  if (!summary.found || !summary.consent) return { tone: 'muted', label: 'No patient match', detail: '' };
  const { consent } = summary;
  if (consent.emailOptedOut) return { tone: 'bad', label: `Opted out${consent.optedOutAt ? ` ${day(consent.optedOutAt)}` : ''}`, detail: last };
  if (consent.marketingAuthorized) {
    const expiry = consent.marketing.expiresAt ? `expires ${day(consent.marketing.expiresAt)}` : 'no expiry';
    return { tone: 'ok', label: `Authorized for marketing · ${expiry}`, detail: last };
  }
  const why = { active: 'not authorized', expired: `authorization expired ${day(consent.marketing.expiresAt)}`, revoked: 'authorization revoked', none: 'no authorization on file' }[
    consent.marketing.state
  ];
  return { tone: 'warn', label: `Not authorized for marketing · ${why}`, detail: last };
}

export function ConsentBadge({ state }: { state: BadgeState }) {
  const { tone, label, detail } = describeConsent(state);
  return (
    <span class={`badge ${tone}`} role="status" title={detail || label}>
      <strong>{label}</strong>
      {detail && <span class="sub">{detail}</span>}
    </span>
  );
}
