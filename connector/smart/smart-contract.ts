// The SMART app's own HTTP contract (zod): the page's session and review routes and the admin registration routes; shared by the server and the app page (no Node built-ins).
import { z } from 'zod';
import { Forecast, ScanResult } from '../api/contract.js';

/** Paths the app serves. The page's campaign calls go to `${smartApiBase}` + the /api/v1 contract path of the route. */
export const smartPaths = {
  launch: '/smart/launch',
  callback: '/smart/callback',
  app: '/smart/app',
  assets: '/smart/assets',
  session: '/smart/api/session',
  logout: '/smart/api/logout',
  review: '/smart/api/review/:id',
  admin: '/smart/admin',
} as const;
/** The page's ConnectorClient calls contract routes under this prefix, with its cookie (and the anti-forgery header) instead of a bearer token. */
export const smartApiBase = '/smart';
/** The header carrying the anti-forgery token on state-changing calls. */
export const csrfHeader = 'x-outreach-csrf';

export const SmartSessionInfo = z.object({
  ehr: z.object({ id: z.string(), name: z.string(), iss: z.string() }),
  practitioner: z.string(),
  kind: z.enum(['ehr', 'standalone']),
  /** The clinician account the practitioner is linked to, or null: then the app cannot approve. */
  user: z.object({ username: z.string(), role: z.string() }).nullable(),
  expiresAt: z.iso.datetime({ offset: true }),
  csrf: z.string(),
});
export type SmartSessionInfo = z.infer<typeof SmartSessionInfo>;

/** What a clinician sees besides the campaign itself: the PHI findings of each content field and the delivery forecast. */
export const CampaignReviewDetails = z.object({
  findings: z.object({ subject: ScanResult, preheader: ScanResult, body: ScanResult }),
  forecast: Forecast.extend({
    /** PHI-free mail that would go without verified TLS (tls-or-escrow only). */
    opportunistic: z.number().int().nonnegative(),
    /** Members excluded, by reason (counts only). */
    excluded: z.record(z.string(), z.number().int().nonnegative()),
  }),
});
export type CampaignReviewDetails = z.infer<typeof CampaignReviewDetails>;

// --- admin: EHR registration for app launch, practitioner links

export const SmartEhrInput = z.strictObject({
  name: z.string().trim().min(1).max(100),
  iss: z.string().min(1).max(2000),
  clientId: z.string().min(1).max(200),
  redirectUri: z.string().min(1).max(2000),
  /** Origins that may frame the app (default: the origin of iss). */
  frameOrigins: z.array(z.string().max(2000)).max(20).optional(),
  autoProvision: z.boolean().default(false),
});
/** A change to a registration: any of the fields an admin fixes (not the `iss`, which is what the registration is), and disabling or enabling it. */
export const SmartEhrUpdate = z.strictObject({
  name: SmartEhrInput.shape.name.optional(),
  clientId: SmartEhrInput.shape.clientId.optional(),
  redirectUri: SmartEhrInput.shape.redirectUri.optional(),
  frameOrigins: z.array(z.string().max(2000)).max(20).optional(),
  autoProvision: z.boolean().optional(),
  /** true: the EHR can no longer launch the app and its open app sessions end; false: it may launch again. */
  disabled: z.boolean().optional(),
});
export const SmartEhr = z.object({
  id: z.string(),
  name: z.string(),
  iss: z.string(),
  clientId: z.string(),
  redirectUri: z.string(),
  frameOrigins: z.array(z.string()),
  autoProvision: z.boolean(),
  createdBy: z.string(),
  createdAt: z.iso.datetime({ offset: true }),
  disabled: z.boolean(),
});
export const SmartEhrList = z.object({ ehrs: z.array(SmartEhr) });
export const PractitionerLinkInput = z.strictObject({
  practitioner: z.string().regex(/^Practitioner\/[A-Za-z0-9.-]{1,64}$/, 'expected Practitioner/<id>'),
  username: z.string().trim().min(1).max(64),
});
export const PractitionerLink = z.object({
  practitioner: z.string(),
  username: z.string(),
  role: z.string(),
  provisioned: z.boolean(),
  createdBy: z.string(),
  createdAt: z.iso.datetime({ offset: true }),
});
export const PractitionerLinkList = z.object({ links: z.array(PractitionerLink) });
