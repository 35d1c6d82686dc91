// What may travel to Salesforce: by default the campaign name and its membership only; an admin may widen it field by field.
import { z } from 'zod';

/**
 * The widenings an admin may allow. Clinical facts (conditions, lab values, visit reasons, codes) are not in this list
 * on purpose: no setting can send them, because nothing here reads patient facts at all.
 */
export const policyWidenings = ['segment-name', 'purpose', 'audience-size'] as const;
export type PolicyWidening = (typeof policyWidenings)[number];

export const PhiPolicy = z.strictObject({
  allow: z.array(z.enum(policyWidenings)).max(policyWidenings.length).default([]),
});
export type PhiPolicy = z.infer<typeof PhiPolicy>;

export const defaultPhiPolicy: PhiPolicy = { allow: [] };

/** The campaign as the sync sees it: labels and internal ids, never patient data. */
export interface CampaignForPush {
  /** Our stable key for the campaign (`campaign/12`); a re-push updates the same Salesforce Campaign. */
  key: string;
  name: string;
  segmentName?: string;
  purpose?: string;
  /** Internal patient ids (patients.id) of the members. */
  memberPatientIds: readonly number[];
}

/** The Campaign record fields the policy lets through, and their names (recorded with the push). */
export function campaignRecord(campaign: CampaignForPush, policy: PhiPolicy): { record: Record<string, string | number | boolean>; fields: string[] } {
  const allowed = new Set(policy.allow);
  const record: Record<string, string | number | boolean> = { Name: campaign.name.slice(0, 80), IsActive: true };
  const description: string[] = [];
  if (allowed.has('segment-name') && campaign.segmentName) description.push(`Segment: ${campaign.segmentName}`);
  if (allowed.has('purpose') && campaign.purpose) description.push(`Purpose: ${campaign.purpose}`);
  if (description.length) record.Description = description.join('\n').slice(0, 32000);
  if (allowed.has('audience-size')) record.NumberSent = campaign.memberPatientIds.length;
  return { record, fields: Object.keys(record) };
}

/** A CampaignMember carries the link and a status, nothing about the patient. */
export function memberRecord(campaignId: string, contactId: string, status: string): { CampaignId: string; ContactId: string; Status: string } {
  return { CampaignId: campaignId, ContactId: contactId, Status: status };
}

/** The audit entity naming a policy: `salesforce-policy/default` or `salesforce-policy/purpose|segment-name`. */
export function policyEntity(policy: PhiPolicy): string {
  return `salesforce-policy/${policy.allow.length ? [...policy.allow].sort().join('|') : 'default'}`;
}
