// The SMART EHR registration calls of the options page: registered EHRs and practitioner links on the connector's /smart/admin routes, validated on the way out and on the way back.
import { z } from 'zod';
import { PractitionerLink, PractitionerLinkInput, PractitionerLinkList, SmartEhr, SmartEhrInput, SmartEhrList, SmartEhrUpdate, smartPaths } from '../../connector/smart/smart-contract.js';
import { permissions, type Role } from '../../connector/users/permissions.js';
import { ConnectorCallError } from '../connector-error.js';
import { bearerToken, sendToConnector, type HttpClientOptions } from './connector-http.js';

/** An EHR id as the registry writes it (digits); only such ids are put into a URL. */
export const EhrId = z.string().regex(/^[0-9]{1,18}$/, 'expected an EHR registration id');

/** The SMART admin requests the options page sends to the background, each validated with the connector's own schemas. */
export const SmartAdminRequest = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('list-ehrs') }),
  z.strictObject({ op: z.literal('register-ehr'), ehr: SmartEhrInput }),
  z.strictObject({ op: z.literal('update-ehr'), ehrId: EhrId, changes: SmartEhrUpdate }),
  z.strictObject({ op: z.literal('list-links'), ehrId: EhrId }),
  z.strictObject({ op: z.literal('link'), ehrId: EhrId, link: PractitionerLinkInput }),
  z.strictObject({ op: z.literal('unlink'), ehrId: EhrId, practitioner: PractitionerLinkInput.shape.practitioner }),
]);
export type SmartAdminRequest = z.input<typeof SmartAdminRequest>;
type Parsed = z.output<typeof SmartAdminRequest>;

export type SmartEhr = z.infer<typeof SmartEhr>;
export type PractitionerLink = z.infer<typeof PractitionerLink>;

/** What each request answers with. */
export type SmartAdminResult<R extends SmartAdminRequest> = R extends { op: 'list-ehrs' }
  ? { ehrs: SmartEhr[] }
  : R extends { op: 'register-ehr' | 'update-ehr' }
    ? SmartEhr
    : R extends { op: 'list-links' }
      ? { links: PractitionerLink[] }
      : R extends { op: 'link' }
        ? PractitionerLink
        : null;

/** The operation of the permission matrix each request needs (the connector checks the same ones). */
const operationOf = { 'list-ehrs': 'endpoints.read', 'register-ehr': 'endpoints.write', 'update-ehr': 'endpoints.write', 'list-links': 'users.read', link: 'users.write', unlink: 'users.write' } as const;

export function smartAdminAllowed(op: Parsed['op'], role: Role | undefined): boolean {
  return role !== undefined && (permissions[operationOf[op]] as readonly Role[]).includes(role);
}

function target(request: Parsed): { method: 'GET' | 'POST' | 'PATCH' | 'DELETE'; path: string; body?: unknown; response: z.ZodType | null } {
  const ehrs = `${smartPaths.admin}/ehrs`;
  switch (request.op) {
    case 'list-ehrs':
      return { method: 'GET', path: ehrs, response: SmartEhrList };
    case 'register-ehr':
      return { method: 'POST', path: ehrs, body: request.ehr, response: SmartEhr };
    case 'update-ehr':
      return { method: 'PATCH', path: `${ehrs}/${request.ehrId}`, body: request.changes, response: SmartEhr };
    case 'list-links':
      return { method: 'GET', path: `${ehrs}/${request.ehrId}/practitioners`, response: PractitionerLinkList };
    case 'link':
      return { method: 'POST', path: `${ehrs}/${request.ehrId}/practitioners`, body: request.link, response: PractitionerLink };
    case 'unlink':
      return { method: 'DELETE', path: `${ehrs}/${request.ehrId}/practitioners/${encodeURIComponent(request.practitioner.slice('Practitioner/'.length))}`, response: null };
  }
}

/** Runs one already-validated request against the connector. Throws ConnectorCallError with a stable code. */
export async function callSmartAdmin(options: HttpClientOptions, request: Parsed): Promise<unknown> {
  const token = await bearerToken(options);
  const t = target(request);
  const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${token}` };
  if (t.body !== undefined) headers['content-type'] = 'application/json';
  const response = await sendToConnector(options, t.path, { method: t.method, headers, body: t.body === undefined ? undefined : JSON.stringify(t.body) });
  if (t.response === null) return null;
  const parsed = t.response.safeParse(await response.json().catch(() => undefined));
  if (!parsed.success) throw new ConnectorCallError({ code: 'CONNECTOR_CONTRACT', message: `The connector's answer to ${request.op} does not match the SMART admin contract.` });
  return parsed.data;
}
