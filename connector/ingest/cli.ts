// `outreach endpoint add|list|test|remove` and `outreach fhir sync`: FHIR endpoints and ingest from the command line.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { generateSigningKey, publicJwks, parseEndpointConfig, type EndpointInput } from '../../fhir/endpoint.js';
import type { SyncSummary } from '../../fhir/sync.js';
import { action, type CliContext } from '../cli-context.js';
import { fail } from '../errors.js';
import type { EndpointSummary } from './endpoint-registry.js';
import { checkEndpoint, endpointRegistry, syncRegisteredEndpoint, type EndpointCheck } from './endpoint-sync.js';

interface AddOptions {
  baseUrl: string;
  clientId?: string;
  keyFile?: string;
  generateKey?: string;
  alg?: string;
  kid?: string;
  scope: string[];
  tokenUrl?: string;
  auth: string;
}

interface SyncOptions {
  endpoint: string;
  mode: string;
  since?: string;
  full?: boolean;
  group?: string;
  system?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function readKeyFile(path: string): string | Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw fail('FHIR_ENDPOINT_CONFIG', `cannot read the key file ${path}`, { field: 'privateKey' });
  }
  if (!text.trimStart().startsWith('{')) return text;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw fail('FHIR_ENDPOINT_CONFIG', `the key file ${path} is neither a PEM nor a JSON JWK`, { field: 'privateKey' });
  }
}

const showEndpoint = (e: EndpointSummary) =>
  `${e.name}  ${e.baseUrl}  ${e.auth === 'none' ? 'open (no auth)' : `SMART ${e.alg ?? ''} client ${e.clientId ?? ''}`}  scopes ${e.scopes.join(' ')}`;

function showCheck(c: EndpointCheck): string {
  const lines = [`endpoint ${c.endpoint} (${c.baseUrl})`];
  if (c.auth === 'none') lines.push('  auth: none (open endpoint)');
  else {
    lines.push(`  token URL: ${c.tokenUrl} (from ${c.discoveredFrom})`);
    lines.push(`  token: issued, expires in ${c.token?.expiresInSeconds} s${c.token?.scope ? `, scope ${c.token.scope}` : ''}`);
  }
  lines.push(`  FHIR ${c.fhirVersion ?? 'version unknown'}${c.software ? ` (${c.software})` : ''}`);
  lines.push(`  Patient search: ${c.patientSearch ? 'ok' : 'no Bundle returned'}`);
  return lines.join('\n');
}

function showSummary(s: SyncSummary): string {
  const types = Object.entries(s.resources).sort(([a], [b]) => a.localeCompare(b));
  const width = Math.max(8, ...types.map(([t]) => t.length));
  return [
    `synced ${s.endpoint} by ${s.mode}${s.since ? ` since ${s.since}` : ' (full)'} in ${(s.durationMs / 1000).toFixed(1)} s`,
    ...types.map(([t, n]) => `  ${t.padEnd(width)} ${String(n).padStart(8)}`),
    `  patients updated ${s.patientsUpdated}, consents ${s.consents}, quarantined ${s.quarantined}`,
    `  next sync starts from ${s.nextSince}`,
  ].join('\n');
}

export function registerIngestCommands(program: Command, ctx: CliContext): void {
  const endpoint = program.command('endpoint').description('FHIR endpoints: SMART backend clients the connector syncs from (admin)');

  endpoint
    .command('add <name>')
    .description('register a FHIR endpoint; its private key is sealed in the store')
    .requiredOption('--base-url <url>', 'FHIR base URL')
    .option('--client-id <id>', 'SMART client id registered at the EHR')
    .option('--key-file <path>', 'private key: PEM (PKCS#8, PKCS#1 or SEC1) or a JSON JWK')
    .option('--generate-key <alg>', 'generate a new RS384 or ES384 key and print its public JWKS to register at the EHR')
    .option('--alg <alg>', 'RS384 or ES384 (default: from the key)')
    .option('--kid <kid>', 'key id sent in the assertion header')
    .option('--scope <scope>', 'SMART scope, repeatable (default system/*.read)', collect)
    .option('--token-url <url>', 'token URL (skips discovery)')
    .option('--auth <auth>', 'smart-backend or none (none needs OUTREACH_OPEN_FHIR_ENDPOINTS=true)', 'smart-backend')
    .action(
      action(ctx, async (name: string, opts: AddOptions) => {
        if (opts.keyFile && opts.generateKey) throw fail('BAD_REQUEST', 'use either --key-file or --generate-key');
        let privateKey: EndpointInput['privateKey'];
        let kid = opts.kid;
        if (opts.generateKey) {
          if (opts.generateKey !== 'RS384' && opts.generateKey !== 'ES384') throw fail('BAD_REQUEST', '--generate-key takes RS384 or ES384', { field: 'generateKey' });
          const generated = generateSigningKey(opts.generateKey);
          privateKey = generated.privateKeyPem;
          kid ??= generated.kid;
        } else if (opts.keyFile) {
          privateKey = readKeyFile(opts.keyFile) as EndpointInput['privateKey'];
        }
        const input: EndpointInput = {
          name,
          baseUrl: opts.baseUrl,
          auth: opts.auth as 'smart-backend' | 'none',
          ...(opts.clientId ? { clientId: opts.clientId } : {}),
          ...(privateKey ? { privateKey } : {}),
          ...(opts.alg ? { alg: opts.alg as 'RS384' | 'ES384' } : {}),
          ...(kid ? { kid } : {}),
          ...(opts.scope?.length ? { scopes: opts.scope } : {}),
          ...(opts.tokenUrl ? { tokenUrl: opts.tokenUrl } : {}),
        };
        const app = await ctx.app();
        const stored = await endpointRegistry(app).add(input);
        const jwks = stored.auth === 'smart-backend' ? publicJwks(parseEndpointConfig(input)) : undefined;
        app.log.info({ endpoint: stored.name, auth: stored.auth }, 'fhir endpoint added');
        ctx.out({ endpoint: stored, ...(jwks ? { jwks } : {}) }, (r: { endpoint: EndpointSummary; jwks?: unknown }) =>
          [`added ${showEndpoint(r.endpoint)}`, ...(r.jwks ? ['register this public key (JWKS) for the client at the EHR:', JSON.stringify(r.jwks, null, 2)] : [])].join('\n'),
        );
      }),
    );

  endpoint
    .command('list')
    .description('registered FHIR endpoints (never their keys)')
    .action(
      action(ctx, async () => {
        const list = await endpointRegistry(await ctx.app()).list();
        ctx.out({ endpoints: list }, (r: { endpoints: EndpointSummary[] }) => (r.endpoints.length ? r.endpoints.map(showEndpoint).join('\n') : 'no FHIR endpoints; add one with `outreach endpoint add`'));
      }),
    );

  endpoint
    .command('test <name>')
    .description('check an endpoint: token URL discovery, a token, the CapabilityStatement and a Patient search')
    .action(action(ctx, async (name: string) => ctx.out(await checkEndpoint(await ctx.app(), name), showCheck)));

  endpoint
    .command('remove <name>')
    .description('remove an endpoint and its sealed key (synced facts stay)')
    .action(
      action(ctx, async (name: string) => {
        const app = await ctx.app();
        await endpointRegistry(app).remove(name);
        app.log.info({ endpoint: name }, 'fhir endpoint removed');
        ctx.out({ removed: name }, () => `removed ${name}`);
      }),
    );

  const fhir = program.command('fhir').description('FHIR ingest');
  fhir
    .command('sync')
    .description('read an endpoint into sealed patient facts (incremental from the last sync)')
    .requiredOption('--endpoint <name>', 'a registered endpoint')
    .option('--mode <mode>', 'search (REST paging) or bulk (Bulk Data $export)', 'search')
    .option('--since <instant>', 'only resources changed after this instant (default: where the last sync ended)')
    .option('--full', 'ignore the last sync and read everything')
    .option('--group <id>', 'bulk mode: export this Group')
    .option('--system', 'bulk mode: system-level export')
    .action(
      action(ctx, async (opts: SyncOptions) => {
        if (opts.mode !== 'search' && opts.mode !== 'bulk') throw fail('BAD_REQUEST', '--mode must be search or bulk', { field: 'mode' });
        if (opts.since && Number.isNaN(Date.parse(opts.since))) throw fail('BAD_REQUEST', '--since must be an ISO instant', { field: 'since' });
        const app = await ctx.app();
        const bar = ctx.progress(`sync ${opts.endpoint}`, 0);
        let summary: SyncSummary;
        try {
          summary = await syncRegisteredEndpoint(app, opts.endpoint, {
            mode: opts.mode,
            ...(opts.since ? { since: opts.since } : {}),
            ...(opts.full ? { full: true } : {}),
            ...(opts.group ? { group: opts.group } : {}),
            ...(opts.system ? { system: true } : {}),
            onProgress: (p) => bar.update(p.read, p.total !== undefined ? Math.max(p.total, p.read) : p.read),
          });
        } finally {
          bar.stop();
        }
        ctx.out(summary, showSummary);
      }),
    );
}
