// Which operation of the permission matrix (connector/users/permissions.ts) each API route performs: the server authorizes by it.
import type { RouteName } from './contract.js';
import type { Operation } from '../users/permissions.js';

/** `public` routes need no session; every other route is one operation, and the contract's roles must be that operation's roles. */
export const routeOperations = {
  login: 'public',
  currentSession: 'account.read',
  logout: 'account.logout',
  changePassword: 'account.change-password',

  lookupPatient: 'consent.status',
  lookupPatientByBody: 'consent.status',
  consentStatus: 'consent.status',
  grantConsent: 'consent.grant',
  revokeConsent: 'consent.revoke',
  consentHistory: 'consent.show',

  listSegments: 'segments.read',
  createSegment: 'segments.write',
  getSegment: 'segments.read',
  updateSegment: 'segments.write',
  deleteSegment: 'segments.write',
  countSegment: 'segments.read',
  countDefinition: 'segments.write',
  explainSegment: 'segments.read',

  listTemplates: 'templates.read',
  createTemplate: 'templates.write',
  getTemplate: 'templates.read',
  updateTemplate: 'templates.write',
  deleteTemplate: 'templates.write',
  scanText: 'templates.read',
  preview: 'preview.sample',
  sendOne: 'campaigns.send',

  listCampaigns: 'campaigns.read',
  createCampaign: 'campaigns.create',
  forecast: 'campaigns.create',
  getCampaign: 'campaigns.read',
  submitCampaign: 'campaigns.submit',
  approveCampaign: 'campaigns.approve',
  rejectCampaign: 'campaigns.reject',
  scheduleCampaign: 'campaigns.schedule',
  cancelCampaign: 'campaigns.cancel',
  campaignStats: 'campaigns.report',

  listJourneys: 'journeys.read',
  createJourney: 'journeys.write',
  getJourney: 'journeys.read',
  approveJourney: 'journeys.approve',
  pauseJourney: 'journeys.activate',
  resumeJourney: 'journeys.activate',
  journeyCounts: 'journeys.read',

  listEndpoints: 'endpoints.read',
  createEndpoint: 'endpoints.write',
  updateEndpoint: 'endpoints.write',
  deleteEndpoint: 'endpoints.write',
  testEndpoint: 'endpoints.read',
  syncEndpoint: 'fhir.sync',

  listSenders: 'senders.read',
  createSender: 'senders.write',
  deleteSender: 'senders.write',
  listUsers: 'users.read',
  createUser: 'users.write',
  updateUser: 'users.write',
  listAudit: 'audit.read',
  verifyAudit: 'audit.verify',
  salesforceStatus: 'salesforce.read',

  health: 'public',
  metrics: 'public',
} as const satisfies Record<RouteName, Operation | 'public'>;
