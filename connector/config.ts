// Configuration, parsed once by zod from the environment and an optional JSON file under OUTREACH_HOME.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { fail } from './errors.js';

const csv = z
  .string()
  .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** Every environment variable the product reads, with its meaning (the README table is generated from this). */
export const configVariables = {
  OUTREACH_HOME: 'Data folder: PGlite store, key file, logs (default ./.outreach).',
  DATABASE_URL: 'PostgreSQL connection string; when set the store uses PostgreSQL instead of PGlite.',
  DATABASE_SCHEMA: 'PostgreSQL schema to use (default public).',
  OUTREACH_MASTER_KEY: 'Base64 32-byte master key; overrides the key file (use a KMS in production).',
  OUTREACH_LOG_LEVEL: 'pino log level (default info).',
  OUTREACH_LOG_FILE: 'Write structured logs to this file as well as stderr.',
  OUTREACH_SESSION_IDLE_MINUTES: 'Idle timeout of API sessions (default 15).',
  OUTREACH_SESSION_ABSOLUTE_HOURS: 'Absolute lifetime of API sessions (default 12).',
  OUTREACH_API_HOST: 'API listen address (default 127.0.0.1).',
  OUTREACH_API_PORT: 'API listen port (default 8787).',
  OUTREACH_TLS_CERT: 'PEM certificate file; with OUTREACH_TLS_KEY the API serves HTTPS.',
  OUTREACH_TLS_KEY: 'PEM private key file for the API.',
  OUTREACH_PUBLIC_URL: 'Public base URL for portal, unsubscribe and tracking links.',
  OUTREACH_EXTENSION_ORIGINS: 'Comma-separated origins allowed by CORS (the extension).',
  OUTREACH_EXTRA_CA_FILE: 'PEM file of additional trusted CAs (FHIR, SMTP, MTA-STS, Salesforce); never disables verification.',
  OUTREACH_DNS_SERVERS: 'Comma-separated DNS servers (host:port) for MX, MTA-STS and TLSA look-ups.',
  OUTREACH_SMTP_RELAY_URL: 'smtp(s)://user:pass@host:port of a smarthost; when set, mail goes through it instead of direct MX.',
  OUTREACH_SENDER_CONCURRENCY: 'Messages in flight at once per sending process (default 32).',
  OUTREACH_SENDER_THREADS: 'Worker threads that sign (DKIM) and send over SMTP/TLS for each sending process (default 1; 0 sends on the event loop).',
  OUTREACH_MX_CONNECTIONS: 'SMTP connections per MX host per sending process (default 10); one domain gets at most twice that over all its MX hosts.',
  OUTREACH_BOUNCE_PORT: 'Port of the inbound bounce and complaint listener (DSN, ARF) the send loop runs; unset: no listener.',
  OUTREACH_BOUNCE_HOST: 'Listen address of the bounce listener (default 127.0.0.1; 0.0.0.0 when the bounce domain MX points here). Offers STARTTLS with OUTREACH_TLS_CERT/KEY.',
  OUTREACH_BOUNCE_ADDRESS: 'SMTP envelope sender (Return-Path) of outgoing mail, on a domain whose MX reaches the bounce listener (default: the sender address).',
  OUTREACH_WEBHOOK_URLS: 'Comma-separated URLs that receive signed, PHI-free delivery events (https, or http on loopback only).',
  OUTREACH_WEBHOOK_SECRET: 'HMAC-SHA256 secret of the webhook signature (at least 32 characters; required with OUTREACH_WEBHOOK_URLS).',
  OUTREACH_HELO_NAME: 'The EHLO name of outgoing SMTP connections (default: the sender address domain).',
  OUTREACH_PRACTICE_NAME: 'The practice name merge tags and escrow notices show (default: the sender display name).',
  OUTREACH_PRACTICE_PHONE: 'The practice phone number of the [practice phone] merge tag.',
  OUTREACH_PRACTICE_ADDRESS: 'The postal address of the [practice address] merge tag (CAN-SPAM footers).',
  OUTREACH_PRACTICE_TIME_ZONE: 'IANA time zone appointment times are shown in (default UTC).',
  OUTREACH_CONSENT_FOLLOW_MS: 'How often an open segment index reads the authorization history for consent changes other processes record, in ms (default 2000; 0 does not follow; otherwise 100 to 60000).',
  OUTREACH_OPEN_FHIR_ENDPOINTS: 'Allow FHIR endpoints without auth (test servers only; default false).',
  SF_LOGIN_URL: 'Salesforce login URL (https://login.salesforce.com or a My Domain).',
  SF_CLIENT_ID: 'Salesforce connected-app consumer key.',
  SF_USERNAME: 'Salesforce integration user.',
  SF_JWT_KEY_FILE: 'PEM private key for the Salesforce JWT bearer flow.',
} as const;

export const ConfigSchema = z.object({
  home: z.string(),
  databaseUrl: z.string().url().optional(),
  databaseSchema: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('public'),
  masterKey: z.string().optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  logFile: z.string().optional(),
  sessionIdleMinutes: z.coerce.number().int().positive().default(15),
  sessionAbsoluteHours: z.coerce.number().int().positive().default(12),
  apiHost: z.string().default('127.0.0.1'),
  apiPort: z.coerce.number().int().min(0).max(65535).default(8787),
  tlsCert: z.string().optional(),
  tlsKey: z.string().optional(),
  publicUrl: z.string().url().optional(),
  extensionOrigins: csv.default([]),
  extraCaFile: z.string().optional(),
  dnsServers: csv.default([]),
  smtpRelayUrl: z.string().optional(),
  senderConcurrency: z.coerce.number().int().positive().default(32),
  mxConnections: z.coerce.number().int().positive().max(100).default(10),
  senderThreads: z.coerce.number().int().min(0).max(16).default(1),
  bouncePort: z.coerce.number().int().min(0).max(65535).optional(),
  bounceHost: z.string().default('127.0.0.1'),
  bounceAddress: z.string().email().optional(),
  webhookUrls: csv
    .pipe(z.array(z.string().url().refine((u) => /^https:/i.test(u) || /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\//i.test(u), 'webhook URLs must be https (http only on loopback)')))
    .default([]),
  webhookSecret: z.string().min(32).optional(),
  heloName: z.string().regex(/^[A-Za-z0-9.-]{1,253}$/).optional(),
  practiceName: z.string().max(200).optional(),
  practicePhone: z.string().max(100).optional(),
  practiceAddress: z.string().max(500).optional(),
  practiceTimeZone: z.string().max(100).optional(),
  /** 0 turns following off; the floor keeps an open index from querying the history many times a second. */
  consentFollowMs: z
    .preprocess(
      // Digits only: an empty or half-typed value is an error, never a silent 0 that would turn following off.
      (v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
      z
        .number({ error: 'must be a whole number of milliseconds' })
        .int('must be a whole number of milliseconds')
        .refine((ms) => ms === 0 || (ms >= 100 && ms <= 60_000), 'must be 0 (do not follow) or 100 to 60000 ms'),
    )
    .default(2000),
  openFhirEndpoints: bool.default(false),
  salesforce: z
    .object({
      loginUrl: z.string().url().optional(),
      clientId: z.string().optional(),
      username: z.string().optional(),
      jwtKeyFile: z.string().optional(),
    })
    .default({}),
});

export type Config = z.infer<typeof ConfigSchema>;
type Env = Record<string, string | undefined>;
type Variable = keyof typeof configVariables;

/** The environment variable behind each setting (config.json uses the setting's own key). */
const sources = {
  databaseUrl: 'DATABASE_URL',
  databaseSchema: 'DATABASE_SCHEMA',
  masterKey: 'OUTREACH_MASTER_KEY',
  logLevel: 'OUTREACH_LOG_LEVEL',
  logFile: 'OUTREACH_LOG_FILE',
  sessionIdleMinutes: 'OUTREACH_SESSION_IDLE_MINUTES',
  sessionAbsoluteHours: 'OUTREACH_SESSION_ABSOLUTE_HOURS',
  apiHost: 'OUTREACH_API_HOST',
  apiPort: 'OUTREACH_API_PORT',
  tlsCert: 'OUTREACH_TLS_CERT',
  tlsKey: 'OUTREACH_TLS_KEY',
  publicUrl: 'OUTREACH_PUBLIC_URL',
  extensionOrigins: 'OUTREACH_EXTENSION_ORIGINS',
  extraCaFile: 'OUTREACH_EXTRA_CA_FILE',
  dnsServers: 'OUTREACH_DNS_SERVERS',
  smtpRelayUrl: 'OUTREACH_SMTP_RELAY_URL',
  senderConcurrency: 'OUTREACH_SENDER_CONCURRENCY',
  mxConnections: 'OUTREACH_MX_CONNECTIONS',
  senderThreads: 'OUTREACH_SENDER_THREADS',
  bouncePort: 'OUTREACH_BOUNCE_PORT',
  bounceHost: 'OUTREACH_BOUNCE_HOST',
  bounceAddress: 'OUTREACH_BOUNCE_ADDRESS',
  webhookUrls: 'OUTREACH_WEBHOOK_URLS',
  webhookSecret: 'OUTREACH_WEBHOOK_SECRET',
  heloName: 'OUTREACH_HELO_NAME',
  practiceName: 'OUTREACH_PRACTICE_NAME',
  practicePhone: 'OUTREACH_PRACTICE_PHONE',
  practiceAddress: 'OUTREACH_PRACTICE_ADDRESS',
  practiceTimeZone: 'OUTREACH_PRACTICE_TIME_ZONE',
  consentFollowMs: 'OUTREACH_CONSENT_FOLLOW_MS',
  openFhirEndpoints: 'OUTREACH_OPEN_FHIR_ENDPOINTS',
} as const satisfies Partial<Record<keyof Config, Variable>>;
const salesforceSources = {
  loginUrl: 'SF_LOGIN_URL',
  clientId: 'SF_CLIENT_ID',
  username: 'SF_USERNAME',
  jwtKeyFile: 'SF_JWT_KEY_FILE',
} as const satisfies Record<keyof Config['salesforce'], Variable>;

/** The variable an invalid setting came from, to name in the error (the key itself for config.json-only settings). */
function variableOf(path: readonly PropertyKey[]): string {
  const [head, sub] = path.map(String);
  if (head === 'salesforce' && sub && sub in salesforceSources) return salesforceSources[sub as keyof typeof salesforceSources];
  return head && head in sources ? sources[head as keyof typeof sources] : path.map(String).join('.') || 'configuration';
}

/** Parses the configuration. `env` defaults to the process environment; tests pass their own. */
export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const home = resolve(env.OUTREACH_HOME ?? overrides.home ?? '.outreach');
  const file = join(home, 'config.json');
  const fromFile = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const raw = {
    ...fromFile,
    home,
    ...Object.fromEntries(Object.entries(sources).map(([key, variable]) => [key, env[variable]])),
    salesforce: Object.fromEntries(Object.entries(salesforceSources).map(([key, variable]) => [key, env[variable]])),
  };
  const defined = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  const parsed = ConfigSchema.safeParse({ ...defined, ...overrides, home });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = variableOf(issue.path);
    throw fail('INVALID_CONFIG', `${field} ${issue.message}`, { field });
  }
  if (parsed.data.webhookUrls.length > 0 && !parsed.data.webhookSecret) {
    throw fail('INVALID_CONFIG', 'OUTREACH_WEBHOOK_SECRET must be set when OUTREACH_WEBHOOK_URLS is', { field: 'OUTREACH_WEBHOOK_SECRET' });
  }
  return parsed.data;
}

/** True when running under CI (tests that need PostgreSQL or Chromium fail instead of skipping). */
export function isCi(env: Env = process.env): boolean {
  return env.CI === 'true' || env.CI === '1';
}
