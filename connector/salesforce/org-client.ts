// Signs in to the org with @salesforce/core (JWT bearer flow through AuthInfo, then Connection) and trusts the configured CAs.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Connection } from '@salesforce/core';
import { setDispatcher } from '@jsforce/jsforce-node/lib/request.js';
import { Agent } from 'undici';
import { fail } from '../errors.js';
import { trustedCas } from '../delivery/trust.js';
import { salesforceError } from './salesforce-error.js';

export interface SalesforceAuthConfig {
  loginUrl: string;
  clientId: string;
  username: string;
  jwtKeyFile: string;
}

/** The connection settings from config.salesforce, or SALESFORCE_NOT_CONFIGURED naming what is missing. */
export function requireAuthConfig(config: { loginUrl?: string | undefined; clientId?: string | undefined; username?: string | undefined; jwtKeyFile?: string | undefined }): SalesforceAuthConfig {
  const missing = (
    [
      ['SF_LOGIN_URL', config.loginUrl],
      ['SF_CLIENT_ID', config.clientId],
      ['SF_USERNAME', config.username],
      ['SF_JWT_KEY_FILE', config.jwtKeyFile],
    ] as const
  )
    .filter(([, v]) => !v)
    .map(([k]) => k);
  if (missing.length) throw fail('SALESFORCE_NOT_CONFIGURED', `Salesforce is not configured: set ${missing.join(', ')}`);
  const loginUrl = new URL(config.loginUrl!);
  // The JWT assertion and the access token travel to these hosts: never over plain HTTP.
  if (loginUrl.protocol !== 'https:') throw fail('INVALID_CONFIG', 'SF_LOGIN_URL must be an https URL', { field: 'SF_LOGIN_URL' });
  if (!existsSync(config.jwtKeyFile!)) throw fail('INVALID_CONFIG', 'SF_JWT_KEY_FILE does not exist', { field: 'SF_JWT_KEY_FILE' });
  return { loginUrl: loginUrl.origin, clientId: config.clientId!, username: config.username!, jwtKeyFile: resolve(config.jwtKeyFile!) };
}

/**
 * jsforce sends every request (token, REST, Bulk) through one undici dispatcher of its own, so extra CAs are trusted by
 * giving it an Agent whose `ca` is Node's roots plus them. Verification stays on; without extra CAs the default returns.
 */
export function trustSalesforceCas(extraCas: readonly string[]): void {
  setDispatcher(extraCas.length ? new Agent({ connect: { ca: trustedCas(extraCas), allowH2: false } }) : undefined);
}

export interface OrgSession {
  connection: Connection;
  instanceUrl: string;
  orgId: string;
  apiVersion: string;
}

/**
 * A connection to the org. @salesforce/core keeps the authorization in ~/.sfdx (the access token encrypted by its
 * keychain): a saved one for the same user, app and login URL is reused, and jsforce refreshes its token through the JWT
 * flow again when it expires. `fresh` (outreach salesforce connect) always runs the JWT bearer flow anew.
 */
export async function openOrgSession(auth: SalesforceAuthConfig, options: { fresh?: boolean } = {}): Promise<OrgSession> {
  const { AuthInfo, AuthRemover, Connection, StateAggregator } = await import('@salesforce/core');
  try {
    const state = await StateAggregator.getInstance();
    let authInfo: InstanceType<typeof AuthInfo> | undefined;
    if (await state.orgs.exists(auth.username)) {
      const saved = await AuthInfo.create({ username: auth.username });
      const fields = saved.getFields();
      const same = fields.clientId === auth.clientId && fields.loginUrl === auth.loginUrl && fields.privateKey === auth.jwtKeyFile;
      if (same && !options.fresh) authInfo = saved;
      else await (await AuthRemover.create()).removeAuth(auth.username);
    }
    if (!authInfo) {
      authInfo = await AuthInfo.create({
        username: auth.username,
        oauth2Options: { clientId: auth.clientId, loginUrl: auth.loginUrl, privateKeyFile: auth.jwtKeyFile },
      });
      await authInfo.save();
    }
    const connection = await Connection.create({ authInfo });
    const fields = authInfo.getFields();
    return {
      connection,
      instanceUrl: connection.instanceUrl,
      orgId: fields.orgId ?? '',
      apiVersion: connection.getApiVersion(),
    };
  } catch (err) {
    throw salesforceError(err, 'sign in with the JWT bearer flow');
  }
}
