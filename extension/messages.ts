// The typed messages that content scripts and extension pages send to the background worker, and the replies they get.
import { z } from 'zod';
import { routes, type ResponseOf, type RouteName } from '../connector/api/contract.js';
import { SmartAdminRequest, type SmartAdminResult } from './background/smart-admin.js';

const routeNames = Object.keys(routes) as [RouteName, ...RouteName[]];

/** Routes a content script (running inside Salesforce or the EHR) may call; extension pages may call every route. */
export const contentScriptRoutes = [
  'currentSession',
  'lookupPatient',
  'listTemplates',
  'listSegments',
  'countSegment',
  'scanText',
  'preview',
  'forecast',
  'createCampaign',
  'submitCampaign',
  'listCampaigns',
  'getCampaign',
  'approveCampaign',
  'rejectCampaign',
  'scheduleCampaign',
  'sendOne',
] as const satisfies readonly RouteName[];

const Part = z.record(z.string(), z.unknown()).optional();

export const Message = z.discriminatedUnion('type', [
  /** Who is signed in, to which connector. */
  z.strictObject({ type: z.literal('session/get') }),
  z.strictObject({ type: z.literal('session/sign-in'), username: z.string().min(1).max(200), password: z.string().min(1).max(1000) }),
  z.strictObject({ type: z.literal('session/sign-out') }),
  /** Replace a one-time password (extension pages only); the background signs in again with the new one. Never stored. */
  z.strictObject({ type: z.literal('session/change-password'), currentPassword: z.string().min(1).max(1000), newPassword: z.string().min(12).max(1000) }),
  /** Admin: the connector URL (https, or http on loopback). */
  z.strictObject({ type: z.literal('settings/set-connector'), url: z.string().max(2000) }),
  /** Admin: the EHR origins were granted or removed; (re)register the EHR content script on them. */
  z.strictObject({ type: z.literal('ehr/origins-changed'), origins: z.array(z.string().max(300)).max(50) }),
  /** Admin, extension pages only: SMART EHR registrations and practitioner links (the connector's /smart/admin routes). */
  z.strictObject({ type: z.literal('smart-admin'), request: SmartAdminRequest }),
  /** One call of a contract route; the background validates the parts against the route's schemas. */
  z.strictObject({ type: z.literal('api'), route: z.enum(routeNames), params: Part, query: Part, body: z.unknown().optional() }),
]);
export type Message = z.infer<typeof Message>;

export interface SessionState {
  connectorUrl: string | null;
  signedIn: boolean;
  user: { username: string; role: 'admin' | 'marketer' | 'clinician' } | null;
  expiresAt: string | null;
  ehrOrigins: string[];
  /** Signed in with a one-time password: the connector refuses everything but choosing a new one. */
  passwordChangeRequired: boolean;
}

/** A failure as the UI sees it: a stable code (the connector's registry, or one of the extension's own) and a PHI-free text. */
export interface Failure {
  code: string;
  message: string;
  field?: string;
}

export type Reply<T> = { ok: true; data: T } | { ok: false; error: Failure };

/** What each message answers with. */
export type ReplyOf<M extends Message> = M extends { type: 'api'; route: infer N extends RouteName }
  ? Reply<ResponseOf<N>>
  : M extends { type: 'ehr/origins-changed' }
    ? Reply<{ registered: string[] }>
    : M extends { type: 'smart-admin'; request: infer R extends SmartAdminRequest }
      ? Reply<SmartAdminResult<R>>
      : Reply<SessionState>;
