// The /api/v1 contract: zod schemas of every request and response plus the route table; the server validates with it, the extension speaks it, OpenAPI is generated from it.
import { z } from 'zod';
import { phiKinds, type PhiKind } from '../compose/phi-scanner.js';
import { segmentDefinitionSchema } from '../segments/definition.js';
import { purposeList, type Purpose as PurposeName } from '../consent/purposes.js';
import { permissions } from '../users/permissions.js';
import { BranchStep, ExitStep, JourneyStep, JourneyTrigger, SendStep, WaitStep } from '../journeys/journey-definition.js';

// ---------------------------------------------------------------------------------------------------------------------
// Vocabulary shared by many routes

/** Opaque identifiers the connector hands out (never a name, an email or an MRN). */
export const Id = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected an identifier');
/** A Salesforce record id (15 or 18 characters); the object is named by its prefix (003 Contact, 00Q Lead). */
export const CrmId = z.string().regex(/^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$/, 'expected a 15- or 18-character Salesforce id');
export const Timestamp = z.iso.datetime({ offset: true });
export const Role = z.enum(['admin', 'marketer', 'clinician']);
/** Why a message is sent: marketing needs a HIPAA authorization (45 CFR 164.508(a)(3)); treatment reminders do not, but honour channel opt-outs. */
export const Purpose = z.enum(purposeList as [PurposeName, ...PurposeName[]]);
export const Channel = z.enum(['email']);
/** How a campaign may travel: only over verified TLS, TLS else an escrow notice, or always the escrow portal. */
export const DeliveryMode = z.enum(['tls-required', 'tls-or-escrow', 'escrow']);
export const CampaignStatus = z.enum(['draft', 'pending-approval', 'approved', 'rejected', 'scheduled', 'sending', 'sent', 'cancelled']);
export const Comment = z.string().trim().min(1).max(2000);
const Name = z.string().trim().min(1).max(200);
const Page = { limit: z.coerce.number().int().min(1).max(500).default(100), cursor: z.string().max(200).optional() };

/** An error at the HTTP edge: an OperationOutcome whose coding carries the stable error code (connector/errors.ts). */
export const ErrorOutcome = z.object({
  resourceType: z.literal('OperationOutcome'),
  issue: z
    .array(
      z.object({
        severity: z.enum(['fatal', 'error', 'warning', 'information']),
        code: z.string(),
        details: z.object({ coding: z.array(z.object({ system: z.string(), code: z.string() })).min(1), text: z.string() }),
        diagnostics: z.string().optional(),
        expression: z.array(z.string()).optional(),
      }),
    )
    .min(1),
});
export type ErrorOutcome = z.infer<typeof ErrorOutcome>;
export const errorCodeSystem = 'urn:secure-outreach:error';

// ---------------------------------------------------------------------------------------------------------------------
// Sessions and users

export const LoginRequest = z.strictObject({ username: z.string().trim().min(1).max(200), password: z.string().min(1).max(1000) });
export const User = z.object({ id: Id, username: z.string(), role: Role, disabled: z.boolean(), createdAt: Timestamp });
export type User = z.infer<typeof User>;
export const Session = z.object({
  token: z.string().min(20).max(512),
  user: User,
  /** When the session ends whatever happens (absolute timeout). */
  expiresAt: Timestamp,
  /** Inactivity after which the connector ends the session. */
  idleTimeoutSeconds: z.number().int().positive(),
  /**
   * The user signed in with a one-time password (a new account's, or one an admin set or reset): every call but the
   * account ones (current session, change password, sign out) is refused until the user chooses a new password.
   */
  passwordChangeRequired: z.boolean(),
});
export type Session = z.infer<typeof Session>;
export const SessionInfo = Session.omit({ token: true });
export const CreateUserRequest = z.strictObject({ username: z.string().trim().min(1).max(200), password: z.string().min(12).max(1000), role: Role });
export const ChangePasswordRequest = z.strictObject({ currentPassword: z.string().min(1).max(1000), newPassword: z.string().min(12).max(1000) });
export const UpdateUserRequest = z.strictObject({ role: Role.optional(), disabled: z.boolean().optional(), password: z.string().min(12).max(1000).optional() });

// ---------------------------------------------------------------------------------------------------------------------
// Consent (the authorization registry) and patient lookup

export const AuthorizationState = z.enum(['active', 'expired', 'revoked', 'none']);
export const ConsentStatus = z.object({
  /** Whether a marketing message may be sent now (authorization active and no channel opt-out). */
  marketingAuthorized: z.boolean(),
  marketing: z.object({ state: AuthorizationState, grantedAt: Timestamp.nullable(), expiresAt: Timestamp.nullable() }),
  /** An opt-out on the e-mail channel (it also stops treatment reminders on that channel). */
  emailOptedOut: z.boolean(),
  optedOutAt: Timestamp.nullable(),
});
export type ConsentStatus = z.infer<typeof ConsentStatus>;
/** The message a GET lookup by e-mail gets: an address is PHI, and URLs end up in proxy and server logs. */
export const lookupEmailInUrl = 'an e-mail address is PHI and never goes in a URL: POST /api/v1/patients/lookup with {"email": ...} in the body';
/** GET lookup: by CRM record id only (a Salesforce id is not PHI). An `email` here is refused with a 400 that says to POST. */
export const PatientLookupQuery = z.strictObject({
  email: z
    .unknown()
    .refine(() => false, { error: lookupEmailInUrl })
    .optional()
    // Not a parameter of the operation: the OpenAPI document leaves out fields marked x-refused.
    .meta({ 'x-refused': true, description: `Refused: ${lookupEmailInUrl}` }),
  crmId: CrmId,
});
/** POST lookup: exactly one of a CRM id or an e-mail address, in the body (never the URL). */
export const PatientLookupRequest = z
  .strictObject({ crmId: CrmId.optional(), email: z.email().max(320).optional() })
  .refine((q) => (q.crmId === undefined) !== (q.email === undefined), { message: 'give exactly one of crmId or email', path: ['crmId'] });
export const LastCampaign = z.object({ id: Id, name: z.string(), sentAt: Timestamp });
/** What the CRM side may see of a patient: opaque id, consent and campaign history; no clinical fact, no demographics. */
export const PatientSummary = z.object({
  found: z.boolean(),
  patientId: Id.nullable(),
  consent: ConsentStatus.nullable(),
  lastCampaign: LastCampaign.nullable(),
});
export type PatientSummary = z.infer<typeof PatientSummary>;
export const ConsentGrantRequest = z.strictObject({
  purpose: Purpose,
  channel: Channel.default('email'),
  expiresAt: Timestamp.optional(),
  /** Where the authorization was captured (signed form id, portal, FHIR Consent id); no PHI. */
  evidence: z.string().trim().min(1).max(200),
  /** The version of the authorization text the patient agreed to (required for marketing). */
  textVersion: z.string().regex(/^[A-Za-z0-9._:\/|-]{1,128}$/, 'expected a short version identifier').optional(),
});
export const ConsentRevokeRequest = z.strictObject({ purpose: Purpose.optional(), channel: Channel.default('email'), reason: z.string().trim().min(1).max(500) });
export const ConsentEvent = z.object({
  at: Timestamp,
  action: z.enum(['granted', 'revoked', 'expired', 'opted-out', 'opted-in']),
  purpose: Purpose.nullable(),
  channel: Channel,
  source: z.enum(['api', 'fhir', 'salesforce', 'unsubscribe', 'portal']),
  actor: z.string().nullable(),
});
export const ConsentHistory = z.object({ patientId: Id, events: z.array(ConsentEvent) });

// ---------------------------------------------------------------------------------------------------------------------
// Segments

/** A segment definition in the segment DSL (connector/segments/definition.ts): errors name the exact path. */
export const SegmentDefinition = segmentDefinitionSchema;
export const SegmentInput = z.strictObject({ name: Name, description: z.string().max(2000).default(''), definition: SegmentDefinition });
export const Segment = z.object({
  id: Id,
  name: z.string(),
  description: z.string(),
  definition: SegmentDefinition,
  /** The size the last count or explanation of the current definition found, or null before one (and after an edit). */
  lastCount: z.number().int().nonnegative().nullable(),
  updatedAt: Timestamp,
});
export type Segment = z.infer<typeof Segment>;
export const SegmentCount = z.object({ count: z.number().int().nonnegative(), countedAt: Timestamp });
export const SegmentCountRequest = z.strictObject({ definition: SegmentDefinition });
export const SegmentExplanation = z.object({ steps: z.array(z.object({ clause: z.string(), matched: z.number().int().nonnegative() })), count: z.number().int().nonnegative() });

// ---------------------------------------------------------------------------------------------------------------------
// Templates, PHI scan, masked preview, one-off send

export const TemplateInput = z.strictObject({
  name: Name,
  purpose: Purpose,
  subject: z.string().min(1).max(300),
  preheader: z.string().max(300).default(''),
  /** The body in the template language (merge tags such as {{patient.firstName}}); HTML. */
  body: z.string().min(1).max(200_000),
});
export const Template = TemplateInput.extend({
  id: Id,
  /** Merge tags the template uses, and whether any of them is clinical (forces tls-required or escrow). */
  mergeTags: z.array(z.string()),
  usesClinicalTags: z.boolean(),
  updatedAt: Timestamp,
});
export type Template = z.infer<typeof Template>;
/** One scanner finding (connector/compose/phi-scanner.ts): offsets into the scanned text, never the matched text. */
export const PhiFinding = z.object({
  start: z.number().int().nonnegative(),
  end: z.number().int().nonnegative(),
  kind: z.enum(phiKinds as [PhiKind, ...PhiKind[]]),
  category: z.enum(['identifier', 'clinical']),
  severity: z.enum(['high', 'medium']),
  rule: z.string(),
});
export type PhiFinding = z.infer<typeof PhiFinding>;
export const ScanRequest = z.strictObject({ text: z.string().max(200_000), field: z.enum(['subject', 'preheader', 'body']).default('body') });
export const ScanResult = z.object({ findings: z.array(PhiFinding), blocked: z.boolean() });
export type ScanResult = z.infer<typeof ScanResult>;
export const Audience = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('segment'), segmentId: Id }),
  z.strictObject({ kind: z.literal('contact'), crmId: CrmId }),
]);
export type Audience = z.infer<typeof Audience>;
export const PreviewRequest = z.strictObject({ templateId: Id, audience: Audience });
/** A rendered sample with every PHI merge value masked (e.g. "J*** D***"), plus the scan of the rendered text. */
export const Preview = z.object({ subject: z.string(), preheader: z.string(), body: z.string(), scan: ScanResult });
export type Preview = z.infer<typeof Preview>;
export const SendOneRequest = z.strictObject({ crmId: CrmId, templateId: Id, purpose: Purpose, deliveryMode: DeliveryMode });
export const SendOneResult = z.object({ messageId: Id, status: z.enum(['queued', 'held', 'suppressed']), reason: z.string().nullable() });

// ---------------------------------------------------------------------------------------------------------------------
// Campaigns

export const CampaignInput = z.strictObject({
  name: Name,
  templateId: Id,
  audience: Audience,
  purpose: Purpose,
  deliveryMode: DeliveryMode.default('tls-or-escrow'),
});
export const Approval = z.object({ by: z.string(), decision: z.enum(['approved', 'rejected']), comment: z.string().nullable(), at: Timestamp });
export const Campaign = z.object({
  id: Id,
  name: z.string(),
  status: CampaignStatus,
  purpose: Purpose,
  deliveryMode: DeliveryMode,
  /** The content the clinician approves: template text with merge tags, never a rendered message. */
  content: z.object({ templateId: Id, subject: z.string(), preheader: z.string(), body: z.string() }),
  audience: z.object({
    kind: z.enum(['segment', 'contact']),
    /** For a segment: its name and definition; for one contact: the CRM id. */
    label: z.string(),
    definition: SegmentDefinition.nullable(),
    count: z.number().int().nonnegative(),
  }),
  createdBy: z.string(),
  createdAt: Timestamp,
  approvals: z.array(Approval),
  scheduledAt: Timestamp.nullable(),
});
export type Campaign = z.infer<typeof Campaign>;
export const CampaignList = z.object({ campaigns: z.array(Campaign), nextCursor: z.string().nullable() });
export const CampaignListQuery = z.strictObject({ status: CampaignStatus.optional(), ...Page });
export const DecisionRequest = z.strictObject({ comment: Comment.optional() });
export const RejectRequest = z.strictObject({ comment: Comment });
export const ScheduleRequest = z.strictObject({ at: Timestamp.optional() });
export const ForecastRequest = z.strictObject({ templateId: Id, audience: Audience, purpose: Purpose, deliveryMode: DeliveryMode });
/** How an audience would be delivered now: by verified TLS, by escrow notice, held (tls-required without TLS) or suppressed (no authorization, opt-out). */
export const Forecast = z.object({
  recipients: z.number().int().nonnegative(),
  tls: z.number().int().nonnegative(),
  escrow: z.number().int().nonnegative(),
  held: z.number().int().nonnegative(),
  suppressed: z.number().int().nonnegative(),
  /** Set when the delivery mode is not allowed for the template (clinical merge tags need tls-required or escrow). */
  modeProblem: z.string().nullable(),
});
export type Forecast = z.infer<typeof Forecast>;
export const CampaignStats = z.object({
  queued: z.number().int().nonnegative(),
  sent: z.number().int().nonnegative(),
  escrowed: z.number().int().nonnegative(),
  held: z.number().int().nonnegative(),
  suppressed: z.number().int().nonnegative(),
  bounced: z.number().int().nonnegative(),
  opened: z.number().int().nonnegative(),
  unsubscribed: z.number().int().nonnegative(),
});

// ---------------------------------------------------------------------------------------------------------------------
// Journeys: automated reminders started by EHR changes, approved by a clinician per version

export const JourneyStatus = z.enum(['draft', 'active', 'paused']);
/** A send step names a template; the journey keeps its latest version, the one the clinician approves. */
export const JourneyStepInput = z.discriminatedUnion('kind', [SendStep.omit({ templateVersionId: true }).extend({ templateId: Id }), WaitStep, BranchStep, ExitStep]);
export const JourneyInput = z.strictObject({
  name: Name,
  purpose: Purpose,
  deliveryMode: DeliveryMode.default('tls-or-escrow'),
  trigger: JourneyTrigger,
  steps: z.array(JourneyStepInput).min(1).max(50),
});
export const Journey = z.object({
  id: Id,
  name: z.string(),
  status: JourneyStatus,
  purpose: Purpose,
  deliveryMode: DeliveryMode,
  trigger: JourneyTrigger,
  steps: z.array(JourneyStep),
  /** The version: every edit bumps it and voids the approval. */
  revision: z.number().int().positive(),
  approvedBy: z.string().nullable(),
  approvedAt: Timestamp.nullable(),
  createdBy: z.string(),
  createdAt: Timestamp,
});
export type Journey = z.infer<typeof Journey>;
export const JourneyApproveRequest = z.strictObject({ revision: z.number().int().positive().optional() });
/** Counts only: per step what it did and who waits before it, and how enrollments ended. */
export const JourneyCounts = z.object({
  journey: Journey,
  steps: z.array(
    z.object({ index: z.number().int().nonnegative(), name: z.string(), kind: z.string(), waiting: z.number().int().nonnegative(), outcomes: z.record(z.string(), z.number().int().nonnegative()) }),
  ),
  enrollments: z.object({ waiting: z.number().int().nonnegative(), done: z.number().int().nonnegative(), exited: z.record(z.string(), z.number().int().nonnegative()) }),
});

// ---------------------------------------------------------------------------------------------------------------------
// Admin: FHIR endpoints, senders, audit, Salesforce, health

export const EndpointInput = z.strictObject({
  name: Name,
  baseUrl: z.url({ protocol: /^https$/ }).max(2000),
  tokenUrl: z.url({ protocol: /^https$/ }).max(2000).optional(),
  clientId: z.string().min(1).max(200),
  /** The JWKS key id the connector signs client assertions with. */
  keyId: z.string().min(1).max(200).optional(),
  scopes: z.string().max(2000).default('system/*.read'),
  useBulkExport: z.boolean().default(false),
});
export const Endpoint = EndpointInput.extend({
  id: Id,
  lastSyncAt: Timestamp.nullable(),
  lastSyncStatus: z.enum(['never', 'running', 'ok', 'failed']),
});
export type Endpoint = z.infer<typeof Endpoint>;
export const EndpointTestResult = z.object({
  ok: z.boolean(),
  fhirVersion: z.string().nullable(),
  tokenOk: z.boolean(),
  latencyMs: z.number().nonnegative(),
  /** Error code from the registry when not ok. */
  error: z.string().nullable(),
});
export const SyncStarted = z.object({ syncId: Id, startedAt: Timestamp });
export const SenderInput = z.strictObject({ address: z.email().max(320), displayName: z.string().max(200).default(''), dkimSelector: z.string().max(63).optional() });
export const Sender = SenderInput.extend({ id: Id, verified: z.boolean() });
export const AuditQuery = z.strictObject({ actor: z.string().max(200).optional(), action: z.string().max(100).optional(), from: Timestamp.optional(), to: Timestamp.optional(), ...Page });
export const AuditEntry = z.object({ seq: z.number().int().nonnegative(), at: Timestamp, actor: z.string(), action: z.string(), subject: z.string().nullable(), hash: z.string() });
export const AuditPage = z.object({ entries: z.array(AuditEntry), nextCursor: z.string().nullable() });
export const AuditVerification = z.object({ ok: z.boolean(), entries: z.number().int().nonnegative(), firstBadSeq: z.number().int().nullable() });
export const SalesforceStatus = z.object({
  connected: z.boolean(),
  instanceUrl: z.string().nullable(),
  username: z.string().nullable(),
  lastPushAt: Timestamp.nullable(),
  lastOptOutPullAt: Timestamp.nullable(),
  error: z.string().nullable(),
});
export type SalesforceStatus = z.infer<typeof SalesforceStatus>;
export const Health = z.object({ status: z.enum(['ok', 'degraded']), version: z.string(), store: z.enum(['ok', 'unavailable']) });

const IdParams = z.strictObject({ id: Id });
const PatientParams = z.strictObject({ patientId: Id });
const NoContent = z.null();

// ---------------------------------------------------------------------------------------------------------------------
// The route table

export type Access = 'public' | 'session' | readonly z.infer<typeof Role>[];
export interface RouteSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path under /api/v1, with `:name` parameters. */
  path: string;
  /** 'public' needs no token, 'session' any signed-in user, otherwise the roles allowed. */
  access: Access;
  summary: string;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** The success body; z.null() means 204 No Content. */
  response: z.ZodType;
  /** Success status (default 200, or 204 when the response is null). */
  status?: number;
  /** The response is not JSON (Prometheus text). */
  text?: boolean;
}

// Each route's roles are those of its operation in the permission matrix (connector/users/permissions.ts), so the two cannot disagree.
const all = permissions['consent.status'];
const admin = ['admin'] as const;
const marketing = ['marketer'] as const;
const reading = permissions['segments.read'];
const approving = permissions['campaigns.approve'];

export const apiPrefix = '/api/v1';

export const routes = {
  login: { method: 'POST', path: '/session', access: 'public', summary: 'Sign in; returns a bearer token', body: LoginRequest, response: Session, status: 201 },
  currentSession: { method: 'GET', path: '/session', access: 'session', summary: 'The signed-in user and session limits', response: SessionInfo },
  logout: { method: 'DELETE', path: '/session', access: 'session', summary: 'Sign out (ends the token)', response: NoContent },
  changePassword: { method: 'POST', path: '/session/password', access: 'session', summary: 'Change your own password (required after a one-time password); every session of the user ends, sign in again', body: ChangePasswordRequest, response: NoContent },

  lookupPatient: { method: 'GET', path: '/patients/lookup', access: all, summary: 'PHI-safe patient summary and consent by CRM record id (an e-mail address goes in a POST body, never the URL)', query: PatientLookupQuery, response: PatientSummary },
  lookupPatientByBody: { method: 'POST', path: '/patients/lookup', access: all, summary: 'PHI-safe patient summary and consent by CRM id or e-mail (blind index), both in the body', body: PatientLookupRequest, response: PatientSummary },
  consentStatus: { method: 'GET', path: '/consent/:patientId', access: all, summary: 'Current authorization and opt-out state', params: PatientParams, response: ConsentStatus },
  grantConsent: { method: 'POST', path: '/consent/:patientId/grant', access: permissions['consent.grant'], summary: 'Record an authorization', params: PatientParams, body: ConsentGrantRequest, response: ConsentStatus },
  revokeConsent: { method: 'POST', path: '/consent/:patientId/revoke', access: permissions['consent.revoke'], summary: 'Revoke an authorization or opt out of a channel', params: PatientParams, body: ConsentRevokeRequest, response: ConsentStatus },
  consentHistory: { method: 'GET', path: '/consent/:patientId/history', access: permissions['consent.show'], summary: 'Every consent event of a patient', params: PatientParams, response: ConsentHistory },

  listSegments: { method: 'GET', path: '/segments', access: reading, summary: 'All segments', response: z.object({ segments: z.array(Segment) }) },
  createSegment: { method: 'POST', path: '/segments', access: marketing, summary: 'Create a segment', body: SegmentInput, response: Segment, status: 201 },
  getSegment: { method: 'GET', path: '/segments/:id', access: reading, summary: 'One segment', params: IdParams, response: Segment },
  updateSegment: { method: 'PUT', path: '/segments/:id', access: marketing, summary: 'Replace a segment definition', params: IdParams, body: SegmentInput, response: Segment },
  deleteSegment: { method: 'DELETE', path: '/segments/:id', access: marketing, summary: 'Delete (archive) a segment: it leaves the lists; campaigns that use it keep their versions', params: IdParams, response: NoContent },
  countSegment: { method: 'POST', path: '/segments/:id/count', access: reading, summary: 'Count the patients a segment matches now', params: IdParams, response: SegmentCount },
  countDefinition: { method: 'POST', path: '/segments/count', access: marketing, summary: 'Count an unsaved definition', body: SegmentCountRequest, response: SegmentCount },
  explainSegment: { method: 'POST', path: '/segments/:id/explain', access: reading, summary: 'How many patients each clause matches', params: IdParams, response: SegmentExplanation },

  listTemplates: { method: 'GET', path: '/templates', access: permissions['templates.read'], summary: 'All templates', response: z.object({ templates: z.array(Template) }) },
  createTemplate: { method: 'POST', path: '/templates', access: marketing, summary: 'Create a template', body: TemplateInput, response: Template, status: 201 },
  getTemplate: { method: 'GET', path: '/templates/:id', access: permissions['templates.read'], summary: 'One template', params: IdParams, response: Template },
  updateTemplate: { method: 'PUT', path: '/templates/:id', access: marketing, summary: 'Replace a template', params: IdParams, body: TemplateInput, response: Template },
  deleteTemplate: { method: 'DELETE', path: '/templates/:id', access: marketing, summary: 'Delete (archive) a template: it leaves the lists; approved campaigns still send the approved version', params: IdParams, response: NoContent },
  scanText: { method: 'POST', path: '/compose/scan', access: permissions['templates.read'], summary: 'Run the PHI scanner over text', body: ScanRequest, response: ScanResult },
  preview: { method: 'POST', path: '/compose/preview', access: permissions['preview.sample'], summary: 'Render a template for an audience with PHI masked', body: PreviewRequest, response: Preview },
  sendOne: { method: 'POST', path: '/compose/send-one', access: marketing, summary: 'A one-off message to one contact, under the consent and TLS rules', body: SendOneRequest, response: SendOneResult, status: 202 },

  listCampaigns: { method: 'GET', path: '/campaigns', access: permissions['campaigns.read'], summary: 'Campaigns, optionally by status', query: CampaignListQuery, response: CampaignList },
  createCampaign: { method: 'POST', path: '/campaigns', access: marketing, summary: 'Create a draft campaign', body: CampaignInput, response: Campaign, status: 201 },
  forecast: { method: 'POST', path: '/campaigns/forecast', access: marketing, summary: 'How an audience would be delivered under a mode', body: ForecastRequest, response: Forecast },
  getCampaign: { method: 'GET', path: '/campaigns/:id', access: permissions['campaigns.read'], summary: 'One campaign with its status and approvals', params: IdParams, response: Campaign },
  submitCampaign: { method: 'POST', path: '/campaigns/:id/submit', access: marketing, summary: 'Submit a draft for clinician approval', params: IdParams, response: Campaign },
  approveCampaign: { method: 'POST', path: '/campaigns/:id/approve', access: approving, summary: 'Approve a pending campaign', params: IdParams, body: DecisionRequest, response: Campaign },
  rejectCampaign: { method: 'POST', path: '/campaigns/:id/reject', access: approving, summary: 'Reject a pending campaign with a comment', params: IdParams, body: RejectRequest, response: Campaign },
  scheduleCampaign: { method: 'POST', path: '/campaigns/:id/schedule', access: marketing, summary: 'Send an approved campaign now or at a time', params: IdParams, body: ScheduleRequest, response: Campaign },
  cancelCampaign: { method: 'POST', path: '/campaigns/:id/cancel', access: permissions['campaigns.cancel'], summary: 'Cancel a campaign that has not finished', params: IdParams, response: Campaign },
  campaignStats: { method: 'GET', path: '/campaigns/:id/stats', access: permissions['campaigns.report'], summary: 'Delivery counts of a campaign', params: IdParams, response: CampaignStats },

  listJourneys: { method: 'GET', path: '/journeys', access: permissions['journeys.read'], summary: 'All journeys', response: z.object({ journeys: z.array(Journey) }) },
  createJourney: { method: 'POST', path: '/journeys', access: permissions['journeys.write'], summary: 'Create a draft journey (trigger, steps, purpose, mode)', body: JourneyInput, response: Journey, status: 201 },
  getJourney: { method: 'GET', path: '/journeys/:id', access: permissions['journeys.read'], summary: 'One journey', params: IdParams, response: Journey },
  approveJourney: { method: 'POST', path: '/journeys/:id/approve', access: permissions['journeys.approve'], summary: 'Approve this version of a journey; it starts running', params: IdParams, body: JourneyApproveRequest, response: Journey },
  pauseJourney: { method: 'POST', path: '/journeys/:id/pause', access: permissions['journeys.activate'], summary: 'Pause a journey (queued messages are withdrawn)', params: IdParams, response: Journey },
  resumeJourney: { method: 'POST', path: '/journeys/:id/resume', access: permissions['journeys.activate'], summary: 'Resume a paused journey while its approval holds', params: IdParams, response: Journey },
  journeyCounts: { method: 'GET', path: '/journeys/:id/counts', access: permissions['journeys.read'], summary: 'Per-step counts of a journey', params: IdParams, response: JourneyCounts },

  listEndpoints: { method: 'GET', path: '/endpoints', access: admin, summary: 'FHIR endpoints', response: z.object({ endpoints: z.array(Endpoint) }) },
  createEndpoint: { method: 'POST', path: '/endpoints', access: admin, summary: 'Add a FHIR endpoint', body: EndpointInput, response: Endpoint, status: 201 },
  updateEndpoint: { method: 'PUT', path: '/endpoints/:id', access: admin, summary: 'Replace a FHIR endpoint', params: IdParams, body: EndpointInput, response: Endpoint },
  deleteEndpoint: { method: 'DELETE', path: '/endpoints/:id', access: admin, summary: 'Remove a FHIR endpoint', params: IdParams, response: NoContent },
  testEndpoint: { method: 'POST', path: '/endpoints/:id/test', access: admin, summary: 'Discover, get a token and read the CapabilityStatement', params: IdParams, response: EndpointTestResult },
  syncEndpoint: { method: 'POST', path: '/endpoints/:id/sync', access: admin, summary: 'Start a sync now', params: IdParams, response: SyncStarted, status: 202 },

  listSenders: { method: 'GET', path: '/senders', access: permissions['senders.read'], summary: 'Sender addresses', response: z.object({ senders: z.array(Sender) }) },
  createSender: { method: 'POST', path: '/senders', access: admin, summary: 'Add a sender address', body: SenderInput, response: Sender, status: 201 },
  deleteSender: { method: 'DELETE', path: '/senders/:id', access: admin, summary: 'Remove a sender address', params: IdParams, response: NoContent },
  listUsers: { method: 'GET', path: '/users', access: admin, summary: 'Users', response: z.object({ users: z.array(User) }) },
  createUser: { method: 'POST', path: '/users', access: admin, summary: 'Create a user', body: CreateUserRequest, response: User, status: 201 },
  updateUser: { method: 'PATCH', path: '/users/:id', access: admin, summary: 'Change a role, disable, or reset a password', params: IdParams, body: UpdateUserRequest, response: User },
  listAudit: { method: 'GET', path: '/audit', access: admin, summary: 'Audit entries', query: AuditQuery, response: AuditPage },
  verifyAudit: { method: 'POST', path: '/audit/verify', access: admin, summary: 'Verify the hash chain', response: AuditVerification },
  salesforceStatus: { method: 'GET', path: '/salesforce/status', access: permissions['salesforce.read'], summary: 'Salesforce connection state', response: SalesforceStatus },

  health: { method: 'GET', path: '/health', access: 'public', summary: 'Liveness and store state', response: Health },
  metrics: { method: 'GET', path: '/metrics', access: 'public', summary: 'Prometheus metrics (text)', response: z.string(), text: true },
} as const satisfies Record<string, RouteSpec>;

export type Routes = typeof routes;
export type RouteName = keyof Routes;

type In<S> = S extends z.ZodType ? z.input<S> : undefined;
type Out<S> = S extends z.ZodType ? z.output<S> : undefined;
type Field<R, K extends string> = R extends Record<K, infer S> ? S : undefined;

/** What a caller passes for a route (schema inputs, so defaults may be left out). */
export type RequestOf<N extends RouteName> = {
  params: In<Field<Routes[N], 'params'>>;
  query: In<Field<Routes[N], 'query'>>;
  body: In<Field<Routes[N], 'body'>>;
};
/** What a handler receives after validation. */
export type ParsedRequestOf<N extends RouteName> = {
  params: Out<Field<Routes[N], 'params'>>;
  query: Out<Field<Routes[N], 'query'>>;
  body: Out<Field<Routes[N], 'body'>>;
};
export type ResponseOf<N extends RouteName> = z.output<Routes[N]['response']>;

/** The request parts a caller must give: only those the route declares. */
export type CallInput<N extends RouteName> = {
  [K in keyof RequestOf<N> as RequestOf<N>[K] extends undefined ? never : K]: RequestOf<N>[K];
};

/** Fills `:name` parameters (URL-encoded) into a route's path, under the API prefix. */
export function routeUrl(name: RouteName, params: Record<string, string> = {}, query?: Record<string, unknown>): string {
  const path = routes[name].path.replace(/:([A-Za-z]+)/g, (_, key: string) => {
    const value = params[key];
    if (value === undefined) throw new Error(`route ${name} needs the parameter ${key}`);
    return encodeURIComponent(value);
  });
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined && value !== null) search.set(key, String(value));
  const qs = search.toString();
  return `${apiPrefix}${path}${qs ? `?${qs}` : ''}`;
}

/** Finds the route a method and path (without the prefix) address, with its parameters. */
export function matchRoute(method: string, path: string): { name: RouteName; params: Record<string, string> } | undefined {
  for (const [name, spec] of Object.entries(routes) as [RouteName, RouteSpec][]) {
    if (spec.method !== method) continue;
    const pattern = new RegExp(`^${spec.path.replace(/:([A-Za-z]+)/g, '(?<$1>[^/]+)')}$`);
    const m = pattern.exec(path);
    if (m) {
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.groups ?? {})) params[k] = decodeURIComponent(v);
      return { name, params };
    }
  }
  return undefined;
}

/** Whether a role may call a route (the server enforces it; clients use it to hide what would be refused). */
export function allows(name: RouteName, role: z.infer<typeof Role> | undefined): boolean {
  const access: Access = routes[name].access;
  if (access === 'public') return true;
  if (!role) return false;
  return access === 'session' || access.includes(role);
}

/** The OpenAPI 3.1 document, generated from the same schemas. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const json = (schema: z.ZodType, io: 'input' | 'output') => z.toJSONSchema(schema, { io, unrepresentable: 'any' });
  for (const [name, spec] of Object.entries(routes) as [RouteName, RouteSpec][]) {
    const oasPath = `${apiPrefix}${spec.path.replace(/:([A-Za-z]+)/g, '{$1}')}`;
    const parameters: unknown[] = [];
    for (const [where, schema] of [['path', spec.params], ['query', spec.query]] as const) {
      if (!schema) continue;
      const props = (json(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] }) ?? {};
      for (const [key, value] of Object.entries(props.properties ?? {})) {
        if ((value as Record<string, unknown>)['x-refused'] === true) continue;
        parameters.push({ name: key, in: where, required: where === 'path' || (props.required ?? []).includes(key), schema: value });
      }
    }
    const status = spec.status ?? (spec.response instanceof z.ZodNull ? 204 : 200);
    const success =
      status === 204
        ? { description: 'No content' }
        : { description: 'OK', content: { [spec.text ? 'text/plain' : 'application/json']: { schema: json(spec.response, 'output') } } };
    (paths[oasPath] ??= {})[spec.method.toLowerCase()] = {
      operationId: name,
      summary: spec.summary,
      ...(spec.access === 'public' ? { security: [] } : {}),
      ...(Array.isArray(spec.access) ? { 'x-roles': spec.access } : {}),
      parameters,
      ...(spec.body ? { requestBody: { required: true, content: { 'application/json': { schema: json(spec.body, 'input') } } } } : {}),
      responses: {
        [status]: success,
        default: { description: 'Error (OperationOutcome)', content: { 'application/fhir+json': { schema: json(ErrorOutcome, 'output') } } },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Secure Outreach connector API', version },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
