// A fake Salesforce org on loopback HTTPS: the OAuth JWT bearer grant, userinfo, REST (SOQL, describe, sObjects, collections) and Bulk API 2.0 ingest, recording what it received.
import { randomBytes, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { jwtVerify } from 'jose';
import type { TestCa, TestCert } from './test-ca.js';

export interface RecordedRequest {
  method: string;
  /** The path without the query string. */
  path: string;
  query: URLSearchParams;
  contentType: string;
  body: string;
}

export interface SalesforceRecord {
  Id: string;
  SystemModstamp: string;
  [field: string]: unknown;
}

export interface Refusal {
  method?: string;
  path: RegExp;
  status: number;
  errorCode: string;
  message: string;
  /** Refuse this many times (default: always). */
  times?: number;
}

export interface FakeSalesforceOptions {
  ca: TestCa;
  clientId: string;
  username: string;
  /** The connected app's certificate key: assertions must verify against it. */
  publicKey: KeyObject;
  apiVersion?: string;
  /** Whether the org has Data Protection and Privacy (ContactPointTypeConsent). */
  hasConsentObject?: boolean;
  /** Extra Contact fields (custom external-id fields). */
  contactFields?: string[];
  /** Records per SOQL page before nextRecordsUrl (Salesforce: 2000). */
  queryBatchSize?: number;
}

export interface FakeSalesforce {
  /** https://127.0.0.1:<port>: the login URL and the instance URL. */
  url: string;
  orgId: string;
  userId: string;
  requests: RecordedRequest[];
  /** Bodies of the requests matching a method and path pattern. */
  bodies(method: string, path: RegExp): string[];
  /** Records of an sObject type. */
  records(type: string): SalesforceRecord[];
  /** Creates a record as a Salesforce user would (no request recorded). */
  insert(type: string, fields: Record<string, unknown>): string;
  /** Updates a record as a Salesforce user would; SystemModstamp moves to the org clock. */
  update(type: string, id: string, fields: Record<string, unknown>): void;
  /** The org clock (SystemModstamp of writes). */
  setNow(at: Date): void;
  refuse(refusal: Refusal): void;
  /** Invalidates every access token issued so far (the session timeout of the org). */
  expireTokens(): void;
  tokensIssued: number;
  close(): Promise<void>;
}

const describeFields: Record<string, string[]> = {
  Contact: ['Id', 'FirstName', 'LastName', 'Email', 'HasOptedOutOfEmail', 'IndividualId', 'SystemModstamp'],
  Campaign: ['Id', 'Name', 'IsActive', 'Description', 'NumberSent', 'Type', 'Status', 'SystemModstamp'],
  CampaignMember: ['Id', 'CampaignId', 'ContactId', 'LeadId', 'Status', 'SystemModstamp'],
  Individual: ['Id', 'LastName', 'SystemModstamp'],
  ContactPointTypeConsent: [
    'Id', 'Name', 'PartyId', 'ContactPointType', 'PrivacyConsentStatus', 'CaptureDate', 'CaptureContactPointType', 'CaptureSource',
    'EffectiveFrom', 'EffectiveTo', 'DataUsePurposeId', 'SystemModstamp',
  ],
  User: ['Id', 'Username', 'SystemModstamp'],
  Organization: ['Id', 'Name', 'InstanceName', 'IsSandbox', 'TrialExpirationDate', 'NamespacePrefix', 'OrganizationType'],
};
const keyPrefixes: Record<string, string> = {
  Contact: '003', Campaign: '701', CampaignMember: '00v', Individual: '0PK', ContactPointTypeConsent: '0ZY', User: '005', Organization: '00D',
};
const required: Record<string, string[]> = { Contact: ['LastName'], Campaign: ['Name'], CampaignMember: ['CampaignId'], Individual: ['LastName'], ContactPointTypeConsent: ['Name', 'PartyId'] };
const references: Record<string, Record<string, string>> = {
  CampaignMember: { CampaignId: 'Campaign', ContactId: 'Contact' },
  ContactPointTypeConsent: { PartyId: 'Individual' },
  Contact: { IndividualId: 'Individual' },
};

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly fields: string[] = [],
  ) {
    super(message);
  }
}

// Signing a leaf with node-forge costs tens of milliseconds: one per CA serves every fake org of a test file.
const leaves = new WeakMap<TestCa, TestCert>();

const sfDate = (d: Date) => d.toISOString().replace('Z', '+0000');
const parseSfDate = (s: string) => new Date(s.replace(/([+-]\d{2}):?(\d{2})$/, '$1:$2').replace(/\+00:00$/, 'Z'));

export async function startFakeSalesforce(options: FakeSalesforceOptions): Promise<FakeSalesforce> {
  const apiVersion = options.apiVersion ?? '60.0';
  const batchSize = options.queryBatchSize ?? 2000;
  const fields: Record<string, string[]> = { ...describeFields, Contact: [...describeFields.Contact!, ...(options.contactFields ?? [])] };
  if (!options.hasConsentObject) delete fields.ContactPointTypeConsent;
  const store = new Map<string, Map<string, SalesforceRecord>>();
  const requests: RecordedRequest[] = [];
  const refusals: Refusal[] = [];
  const tokens = new Set<string>();
  const cursors = new Map<string, { type: string; select: string[]; rows: SalesforceRecord[] }>();
  const jobs = new Map<string, { info: Record<string, unknown>; csv?: string; polls: number; ok: string[]; failed: string[]; header: string[] }>();
  // The org clock: real time unless a test pins it.
  let pinned: Date | undefined;
  const clock = () => pinned ?? new Date();
  let counter = 0;
  const newId = (type: string) => {
    counter += 1;
    return `${keyPrefixes[type] ?? 'a00'}${'0'.repeat(12 - String(counter).length)}${counter}AAA`;
  };
  const table = (type: string) => {
    let t = store.get(type);
    if (!t) store.set(type, (t = new Map()));
    return t;
  };
  const orgId = '00D000000000001EAA';
  const userId = '005000000000001AAA';
  table('User').set(userId, { Id: userId, Username: options.username, SystemModstamp: sfDate(clock()) });

  const checkFields = (type: string, record: Record<string, unknown>) => {
    const known = fields[type];
    if (!known) throw new ApiError(404, 'NOT_FOUND', 'The requested resource does not exist');
    for (const f of Object.keys(record)) {
      if (f === 'attributes') continue;
      if (!known.includes(f)) throw new ApiError(400, 'INVALID_FIELD', `No such column '${f}' on sobject of type ${type}`, [f]);
    }
  };
  const checkReferences = (type: string, record: Record<string, unknown>) => {
    for (const [field, target] of Object.entries(references[type] ?? {})) {
      const v = record[field];
      if (v != null && !table(target).has(String(v))) throw new ApiError(400, 'INVALID_CROSS_REFERENCE_KEY', `invalid cross reference id`, [field]);
    }
  };
  const create = (type: string, input: Record<string, unknown>): string => {
    const { attributes: _a, ...record } = input;
    checkFields(type, record);
    for (const f of required[type] ?? []) if (record[f] == null || record[f] === '') throw new ApiError(400, 'REQUIRED_FIELD_MISSING', `Required fields are missing: [${f}]`, [f]);
    if (type === 'CampaignMember' && !record.ContactId && !record.LeadId) throw new ApiError(400, 'REQUIRED_FIELD_MISSING', 'Required fields are missing: [ContactId]', ['ContactId']);
    checkReferences(type, record);
    if (type === 'CampaignMember') {
      for (const m of table('CampaignMember').values()) {
        if (m.CampaignId === record.CampaignId && m.ContactId === record.ContactId) throw new ApiError(400, 'DUPLICATE_VALUE', 'Already a campaign member.');
      }
    }
    const id = newId(type);
    const defaults: Record<string, unknown> = type === 'Contact' ? { HasOptedOutOfEmail: false, IndividualId: null, Email: null } : {};
    table(type).set(id, { ...defaults, ...record, Id: id, SystemModstamp: sfDate(clock()) } as SalesforceRecord);
    return id;
  };
  const update = (type: string, id: string, input: Record<string, unknown>) => {
    const { attributes: _a, Id: _id, ...record } = input;
    checkFields(type, record);
    const existing = table(type).get(id);
    if (!existing) throw new ApiError(404, 'ENTITY_IS_DELETED', 'entity is deleted');
    checkReferences(type, record);
    Object.assign(existing, record, { SystemModstamp: sfDate(clock()) });
  };

  const soql = (text: string) => {
    const m = /^\s*SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?(?:\s+ORDER\s+BY\s+(.+?))?(?:\s+LIMIT\s+(\d+))?\s*$/is.exec(text);
    if (!m) throw new ApiError(400, 'MALFORMED_QUERY', 'unexpected token');
    const select = m[1]!.split(',').map((s) => s.trim());
    const type = m[2]!;
    if (type === 'ScratchOrgInfo') throw new ApiError(400, 'INVALID_TYPE', "sObject type 'ScratchOrgInfo' is not supported.");
    if (type === 'Organization') {
      return {
        type,
        select,
        rows: [{ Id: orgId, Name: 'Fake Health', InstanceName: 'FAKE1', IsSandbox: false, TrialExpirationDate: null, NamespacePrefix: null, OrganizationType: 'Developer Edition', SystemModstamp: sfDate(clock()) }],
      };
    }
    const known = fields[type];
    if (!known) throw new ApiError(400, 'INVALID_TYPE', `sObject type '${type}' is not supported.`);
    const where = m[3] ? m[3].split(/\s+AND\s+/i).map((c) => condition(c, known)) : [];
    for (const f of select) if (!known.includes(f)) throw new ApiError(400, 'INVALID_FIELD', `No such column '${f}' on entity '${type}'.`);
    let rows = [...table(type).values()].filter((r) => where.every((w) => w(r)));
    if (m[4]) {
      const keys = m[4].split(',').map((s) => s.trim().split(/\s+/)[0]!);
      rows.sort((a, b) => {
        for (const k of keys) {
          const x = String(a[k] ?? '');
          const y = String(b[k] ?? '');
          if (x !== y) return x < y ? -1 : 1;
        }
        return 0;
      });
    }
    if (m[5]) rows = rows.slice(0, Number(m[5]));
    return { type, select, rows };
  };

  const literal = (raw: string): unknown => {
    const v = raw.trim();
    if (/^'.*'$/s.test(v)) return v.slice(1, -1).replace(/\\'/g, "'");
    if (/^null$/i.test(v)) return null;
    if (/^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/.test(v)) return parseSfDate(v);
    if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v);
    throw new ApiError(400, 'MALFORMED_QUERY', 'unexpected token');
  };

  const condition = (text: string, known: string[]): ((r: SalesforceRecord) => boolean) => {
    const m = /^\s*(\w+)\s*(=|!=|>=|<=|>|<|\bIN\b)\s*(.+?)\s*$/is.exec(text);
    if (!m) throw new ApiError(400, 'MALFORMED_QUERY', 'unexpected token');
    const [, field, op, rawValue] = m as unknown as [string, string, string, string];
    if (!known.includes(field)) throw new ApiError(400, 'INVALID_FIELD', `No such column '${field}'.`);
    if (op.toUpperCase() === 'IN') {
      const list = rawValue.replace(/^\(|\)$/g, '').split(',').map(literal);
      return (r) => list.includes(r[field]);
    }
    const value = literal(rawValue);
    return (r) => {
      const actual = r[field];
      if (value instanceof Date) {
        if (typeof actual !== 'string') return false;
        const a = parseSfDate(actual).getTime();
        const b = value.getTime();
        return op === '>' ? a > b : op === '>=' ? a >= b : op === '<' ? a < b : op === '<=' ? a <= b : op === '=' ? a === b : a !== b;
      }
      const norm = actual === undefined ? null : actual;
      if (op === '=') return norm === value;
      if (op === '!=') return norm !== value;
      if (norm === null || value === null) return false;
      return op === '>' ? (norm as number) > (value as number) : op === '>=' ? (norm as number) >= (value as number) : op === '<' ? (norm as number) < (value as number) : (norm as number) <= (value as number);
    };
  };

  const page = (cursor: { type: string; select: string[]; rows: SalesforceRecord[] }, offset: number, locator: string) => {
    const slice = cursor.rows.slice(offset, offset + batchSize);
    const done = offset + batchSize >= cursor.rows.length;
    return {
      totalSize: cursor.rows.length,
      done,
      ...(done ? {} : { nextRecordsUrl: `/services/data/v${apiVersion}/query/${locator}-${offset + batchSize}` }),
      records: slice.map((r) => ({
        attributes: { type: cursor.type, url: `/services/data/v${apiVersion}/sobjects/${cursor.type}/${r.Id}` },
        ...Object.fromEntries(cursor.select.map((f) => [f, r[f] ?? null])),
      })),
    };
  };

  const parseCsv = (text: string): string[][] => {
    const rows: string[][] = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      const cells: string[] = [];
      let cell = '';
      let quoted = false;
      for (let i = 0; i < line.length; i++) {
        const ch = line[i]!;
        if (quoted) {
          if (ch === '"' && line[i + 1] === '"') (cell += '"'), i++;
          else if (ch === '"') quoted = false;
          else cell += ch;
        } else if (ch === '"') quoted = true;
        else if (ch === ',') cells.push(cell), (cell = '');
        else cell += ch;
      }
      cells.push(cell);
      rows.push(cells);
    }
    return rows;
  };
  const csvCell = (v: string) => `"${v.replace(/"/g, '""')}"`;

  const runJob = (job: { info: Record<string, unknown>; csv?: string; ok: string[]; failed: string[]; header: string[] }) => {
    const [header, ...rows] = parseCsv(job.csv ?? '');
    job.header = header ?? [];
    let failed = 0;
    for (const row of rows) {
      const record = Object.fromEntries(job.header.map((h, i) => [h, row[i] === '' ? null : row[i]]));
      const values = job.header.map((h) => csvCell(String(record[h] ?? '')));
      try {
        const id = create(String(job.info.object), record);
        job.ok.push([csvCell(id), csvCell('true'), ...values].join(','));
      } catch (err) {
        const e = err as ApiError;
        failed += 1;
        job.failed.push([csvCell(''), csvCell(`${e.errorCode}:${e.message}:${e.fields.join(',') || '--'}`), ...values].join(','));
      }
    }
    job.info.numberRecordsProcessed = rows.length;
    job.info.numberRecordsFailed = failed;
  };

  const authorized = (req: IncomingMessage) => {
    const h = req.headers.authorization ?? '';
    return h.startsWith('Bearer ') && tokens.has(h.slice(7));
  };

  const send = (res: ServerResponse, status: number, body: unknown, contentType = 'application/json;charset=UTF-8') => {
    res.writeHead(status, { 'content-type': contentType });
    res.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  };

  const route = async (req: IncomingMessage, res: ServerResponse, url: URL, body: string): Promise<void> => {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    for (const r of refusals) {
      if ((r.method === undefined || r.method === method) && r.path.test(path) && (r.times === undefined || r.times > 0)) {
        if (r.times !== undefined) r.times -= 1;
        return send(res, r.status, [{ message: r.message, errorCode: r.errorCode }]);
      }
    }
    if (method === 'POST' && path === '/services/oauth2/token') {
      const form = new URLSearchParams(body);
      if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return send(res, 400, { error: 'unsupported_grant_type', error_description: 'grant type not supported' });
      try {
        await jwtVerify(form.get('assertion') ?? '', options.publicKey, {
          algorithms: ['RS256'],
          issuer: options.clientId,
          subject: options.username,
          audience: [fake.url, 'https://login.salesforce.com', 'https://test.salesforce.com'],
        });
      } catch {
        return send(res, 400, { error: 'invalid_grant', error_description: 'invalid assertion' });
      }
      const token = `${orgId}!${randomBytes(24).toString('base64url')}`;
      tokens.add(token);
      fake.tokensIssued += 1;
      return send(res, 200, { access_token: token, scope: 'api', instance_url: fake.url, id: `${fake.url}/id/${orgId}/${userId}`, token_type: 'Bearer', issued_at: String(Date.now()) });
    }
    if (!authorized(req)) return send(res, 401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
    if (method === 'GET' && path === '/services/oauth2/userinfo') {
      return send(res, 200, { sub: `${fake.url}/id/${orgId}/${userId}`, user_id: userId, organization_id: orgId, preferred_username: options.username, email: 'integration@example.org' });
    }
    if (method === 'GET' && (path === '/services/data' || path === '/services/data/')) {
      return send(res, 200, ['58.0', '59.0', apiVersion].map((v) => ({ label: `v${v}`, url: `/services/data/v${v}`, version: v })));
    }
    const api = /^\/services\/data\/v(\d+\.\d)\/(.*)$/.exec(path);
    if (!api) return send(res, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    const rest = api[2]!.replace(/\/$/, '');
    let m: RegExpExecArray | null;
    if (method === 'GET' && rest === 'query') {
      const result = soql(url.searchParams.get('q') ?? '');
      const locator = `01g${randomBytes(6).toString('hex')}`;
      cursors.set(locator, result);
      return send(res, 200, page(result, 0, locator));
    }
    if (method === 'GET' && (m = /^query\/(01g[0-9a-f]+)-(\d+)$/.exec(rest))) {
      const cursor = cursors.get(m[1]!);
      if (!cursor) return send(res, 400, [{ errorCode: 'INVALID_QUERY_LOCATOR', message: 'invalid query locator' }]);
      return send(res, 200, page(cursor, Number(m[2]), m[1]!));
    }
    if (method === 'GET' && (m = /^sobjects\/(\w+)\/describe$/.exec(rest))) {
      const known = fields[m[1]!];
      if (!known) return send(res, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
      return send(res, 200, { name: m[1], createable: true, updateable: true, fields: known.map((name) => ({ name, type: name === 'Id' ? 'id' : 'string', createable: name !== 'Id', updateable: name !== 'Id' })) });
    }
    if (method === 'GET' && (m = /^sobjects\/(\w+)\/(\w{15,18})$/.exec(rest))) {
      const record = table(m[1]!).get(m[2]!);
      if (!record) return send(res, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
      return send(res, 200, { attributes: { type: m[1] }, ...record });
    }
    if (method === 'POST' && (m = /^sobjects\/(\w+)$/.exec(rest))) {
      const id = create(m[1]!, JSON.parse(body));
      return send(res, 201, { id, success: true, errors: [] });
    }
    if (method === 'PATCH' && (m = /^sobjects\/(\w+)\/(\w{15,18})$/.exec(rest))) {
      update(m[1]!, m[2]!, JSON.parse(body));
      res.writeHead(204).end();
      return;
    }
    if ((method === 'POST' || method === 'PATCH') && rest === 'composite/sobjects') {
      const { records } = JSON.parse(body) as { allOrNone: boolean; records: Array<Record<string, unknown> & { attributes: { type: string } }> };
      if (records.length > 200) return send(res, 400, [{ errorCode: 'EXCEEDED_ID_LIMIT', message: 'record limit reached' }]);
      const results = records.map((r) => {
        try {
          if (method === 'POST') return { id: create(r.attributes.type, r), success: true, errors: [] };
          update(r.attributes.type, String(r.Id), r);
          return { id: r.Id, success: true, errors: [] };
        } catch (err) {
          const e = err as ApiError;
          return { success: false, errors: [{ statusCode: e.errorCode, message: e.message, fields: e.fields }] };
        }
      });
      return send(res, 200, results);
    }
    if (method === 'POST' && rest === 'jobs/ingest') {
      const spec = JSON.parse(body) as Record<string, unknown>;
      if (!fields[String(spec.object)]) return send(res, 400, [{ errorCode: 'INVALIDJOB', message: 'Unable to find object' }]);
      const id = `750${String(jobs.size + 1).padStart(12, '0')}AAA`;
      const info = {
        id, operation: spec.operation, object: spec.object, createdById: userId, createdDate: sfDate(clock()), state: 'Open',
        concurrencyMode: 'Parallel', contentType: 'CSV', apiVersion: Number(apiVersion), contentUrl: `services/data/v${apiVersion}/jobs/ingest/${id}/batches`,
        lineEnding: spec.lineEnding ?? 'LF', columnDelimiter: spec.columnDelimiter ?? 'COMMA',
      };
      jobs.set(id, { info, polls: 0, ok: [], failed: [], header: [] });
      return send(res, 200, info);
    }
    if ((m = /^jobs\/ingest\/(750\w+?)(\/batches|\/successfulResults|\/failedResults|\/unprocessedrecords)?$/.exec(rest))) {
      const job = jobs.get(m[1]!);
      if (!job) return send(res, 404, [{ errorCode: 'NOT_FOUND', message: 'job not found' }]);
      const sub = m[2];
      if (method === 'PUT' && sub === '/batches') {
        if (job.info.state !== 'Open' || job.csv !== undefined) return send(res, 400, [{ errorCode: 'INVALIDJOBSTATE', message: 'job is not open for upload' }]);
        if (!/^text\/csv/.test(req.headers['content-type'] ?? '')) return send(res, 400, [{ errorCode: 'INVALID_CONTENT_TYPE', message: 'text/csv expected' }]);
        job.csv = body;
        res.writeHead(201).end();
        return;
      }
      if (method === 'PATCH' && !sub) {
        const { state } = JSON.parse(body) as { state: string };
        if (state === 'UploadComplete' && job.info.state === 'Open') job.info.state = 'UploadComplete';
        else if (state === 'Aborted') job.info.state = 'Aborted';
        else return send(res, 400, [{ errorCode: 'INVALIDJOBSTATE', message: 'bad state change' }]);
        return send(res, 200, job.info);
      }
      if (method === 'GET' && !sub) {
        job.polls += 1;
        // The first poll after upload finds it in progress (and processes it); the next finds it complete.
        if (job.info.state === 'UploadComplete') {
          runJob(job);
          job.info.state = 'InProgress';
        } else if (job.info.state === 'InProgress') job.info.state = 'JobComplete';
        return send(res, 200, job.info);
      }
      if (method === 'GET' && sub === '/successfulResults') {
        return send(res, 200, [[csvCell('sf__Id'), csvCell('sf__Created'), ...job.header.map(csvCell)].join(','), ...job.ok].join('\n') + '\n', 'text/csv');
      }
      if (method === 'GET' && sub === '/failedResults') {
        return send(res, 200, [[csvCell('sf__Id'), csvCell('sf__Error'), ...job.header.map(csvCell)].join(','), ...job.failed].join('\n') + '\n', 'text/csv');
      }
      if (method === 'GET' && sub === '/unprocessedrecords') return send(res, 200, job.header.join(',') + '\n', 'text/csv');
    }
    return send(res, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
  };

  let leaf = leaves.get(options.ca);
  if (!leaf) leaves.set(options.ca, (leaf = options.ca.leaf(['127.0.0.1'])));
  const server: Server = createServer({ key: leaf.key, cert: leaf.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', fake.url);
      requests.push({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, contentType: req.headers['content-type'] ?? '', body });
      route(req, res, url, body).catch((err: unknown) => {
        if (err instanceof ApiError) send(res, err.status, [{ message: err.message, errorCode: err.errorCode, fields: err.fields }]);
        else send(res, 500, [{ message: 'internal', errorCode: 'UNKNOWN_EXCEPTION' }]);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const fake: FakeSalesforce = {
    url: `https://127.0.0.1:${port}`,
    orgId,
    userId,
    requests,
    bodies: (method, path) => requests.filter((r) => r.method === method && path.test(r.path)).map((r) => r.body),
    records: (type) => [...table(type).values()],
    insert: (type, f) => create(type, f),
    update: (type, id, f) => update(type, id, f),
    setNow: (at) => void (pinned = at),
    refuse: (r) => void refusals.push(r),
    expireTokens: () => tokens.clear(),
    tokensIssued: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return fake;
}
