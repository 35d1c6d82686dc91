// What a clinician reviews before deciding on a pending campaign, beyond the campaign itself: PHI findings per content field and the delivery forecast (counts only, audited).
import type { App } from '../app.js';
import { addCounts, assessRecipients, noExclusions } from '../campaigns/recipients.js';
import { forecastDelivery } from '../campaigns/forecast.js';
import { scanText } from '../compose/phi-scanner.js';
import { SegmentRepository } from '../segments/segment-repository.js';
import { authorize, type Session } from '../users/authorize.js';
import type { CampaignReviewDetails } from './smart-contract.js';

const scan = (text: string, field: 'subject' | 'preheader' | 'body') => {
  const findings = scanText(text).map((f) => ({ start: f.start, end: f.end, kind: f.kind, category: f.category, severity: f.severity, rule: f.rule }));
  return { findings, blocked: field !== 'body' && findings.length > 0 };
};

/**
 * The review details of campaign `id` for a clinician (`approvals.read`): the scanner's findings over the subject,
 * preheader and body exactly as the campaign shows them, and how its audience would be delivered now.
 */
export async function reviewCampaign(app: App, session: Session, id: string): Promise<CampaignReviewDetails> {
  const who = authorize(session, 'approvals.read');
  const s = await app.sending();
  const c = await s.campaigns.get(who, id);
  const version = await s.templates.getVersion(c.templateVersionId);
  const body = version.content.html || version.content.text;
  const ids =
    c.audience.kind === 'contact'
      ? [c.audience.patientId]
      : await s.segments.allMembers((await new SegmentRepository(app.db).getVersion(c.audience.segmentVersionId)).definition);
  const at = new Date();
  const excluded = noExclusions();
  const domains: string[] = [];
  const deps = { db: app.db, cipher: app.cipher, facts: app.facts, consent: app.consent };
  for (let i = 0; i < ids.length; i += 1000) {
    const assessed = await assessRecipients(deps, { patientIds: ids.slice(i, i + 1000), purpose: c.purpose, at });
    addCounts(excluded, assessed.excluded);
    for (const e of assessed.eligible) {
      const email = String(e.facts.email);
      domains.push(email.slice(email.lastIndexOf('@') + 1).trim().toLowerCase());
    }
  }
  // Reading members' addresses to group them by domain is a PHI access: one audit row per review.
  await app.audit.append({ actor: who.username, role: who.role, action: 'campaign.forecast', purpose: c.purpose, entity: `campaign/${c.id}`, at });
  const modeProblem = version.deliveryModes.includes(c.deliveryMode)
    ? null
    : `clinical content needs delivery mode ${version.deliveryModes.join(' or ')}, not ${c.deliveryMode}`;
  const f = await forecastDelivery({ router: s.router, mode: c.deliveryMode, phiFree: version.phiClass === 'none', domains, excluded, modeProblem });
  return {
    findings: { subject: scan(version.content.subject, 'subject'), preheader: scan(version.content.preheader, 'preheader'), body: scan(body, 'body') },
    forecast: {
      recipients: f.recipients, tls: f.tls, escrow: f.escrow, held: f.held, suppressed: f.suppressed, modeProblem: f.modeProblem,
      opportunistic: f.opportunistic, excluded: { ...f.excluded },
    },
  };
}
