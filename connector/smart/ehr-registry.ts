// EHRs registered for SMART app launch (iss, client id, redirect URI, framing origins, auto-provisioning) and the practitioner-to-clinician links.
import { createHash } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import { fail } from '../errors.js';
import { loadQueries, type Db } from '../store/db.js';
import type { UserDirectory } from '../users/users.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), [
  'insertEhr', 'updateEhr', 'updateEhrById', 'revokeEhrSessions', 'ehrByIss', 'ehrById', 'listEhrs', 'frameOrigins', 'linkPractitioner', 'unlinkPractitioner', 'linkedUser', 'listLinks',
  'revokePractitionerSessions',
] as const);

export interface SmartEhr {
  id: string;
  name: string;
  /** The FHIR base URL the EHR sends as `iss`, without a trailing slash. */
  iss: string;
  clientId: string;
  redirectUri: string;
  /** Origins allowed to frame the app (CSP frame-ancestors); the origin of `iss` unless the admin named others. */
  frameOrigins: string[];
  autoProvision: boolean;
  createdBy: string;
  createdAt: Date;
  disabledAt: Date | null;
}

export interface SmartEhrInput {
  name: string;
  iss: string;
  clientId: string;
  redirectUri: string;
  frameOrigins?: string[];
  autoProvision?: boolean;
}

/** What an admin may change on a registration: everything but the `iss` it is known by, and whether it may launch. */
export interface SmartEhrChanges {
  name?: string;
  clientId?: string;
  redirectUri?: string;
  frameOrigins?: string[];
  autoProvision?: boolean;
  disabled?: boolean;
}

export interface PractitionerLink {
  ehrId: string;
  practitioner: string;
  userId: string;
  username: string;
  role: string;
  provisioned: boolean;
  createdBy: string;
  createdAt: Date;
}

type Actor = { name: string; role: string };
type Row = Record<string, unknown>;

const isLoopbackHost = (host: string) => host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);

/** An https URL (plain http only on loopback: tests and the demo), without credentials, query or fragment. */
export function checkSmartUrl(raw: string, field: string): URL {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw fail('BAD_REQUEST', `${field}: not a URL`, { field });
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw fail('BAD_REQUEST', `${field}: must use https (plain http only on loopback)`, { field });
  }
  if (url.username || url.password || url.hash) throw fail('BAD_REQUEST', `${field}: must not carry credentials or a fragment`, { field });
  return url;
}

/** The `iss` as stored and compared: the URL without query, fragment or trailing slash. */
export function normaliseIss(raw: string): string {
  const url = checkSmartUrl(raw, 'iss');
  if (url.search) throw fail('BAD_REQUEST', 'iss: must not carry a query', { field: 'iss' });
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** `Practitioner/<id>` from a fhirUser claim: relative, or absolute under the EHR's FHIR base. Anything else is undefined. */
export function practitionerOf(fhirUser: string, iss: string): string | undefined {
  const relative = fhirUser.startsWith(`${iss}/`) ? fhirUser.slice(iss.length + 1) : fhirUser;
  const m = /^Practitioner\/([A-Za-z0-9.-]{1,64})(?:\/_history\/[A-Za-z0-9.-]{1,64})?$/.exec(relative);
  return m ? `Practitioner/${m[1]}` : undefined;
}

function toEhr(r: Row): SmartEhr {
  const origins = typeof r.frame_origins === 'string' ? (JSON.parse(r.frame_origins) as string[]) : (r.frame_origins as string[]);
  return {
    id: String(r.id),
    name: r.name as string,
    iss: r.iss as string,
    clientId: r.client_id as string,
    redirectUri: r.redirect_uri as string,
    frameOrigins: origins,
    autoProvision: Boolean(r.auto_provision),
    createdBy: r.created_by as string,
    createdAt: new Date(r.created_at as string | Date),
    disabledAt: r.disabled_at ? new Date(r.disabled_at as string | Date) : null,
  };
}

export class SmartEhrRegistry {
  constructor(
    private readonly deps: { db: Db; audit: AuditLog; users: UserDirectory; clock?: () => Date },
  ) {}

  private now(): Date {
    return this.deps.clock?.() ?? new Date();
  }

  private validate(input: SmartEhrInput) {
    const name = input.name.trim();
    if (!/^[\p{L}\p{N}][\p{L}\p{N} ._()&'-]{0,99}$/u.test(name)) throw fail('BAD_REQUEST', 'name: 1-100 letters, digits, spaces or punctuation', { field: 'name' });
    const iss = normaliseIss(input.iss);
    const clientId = input.clientId.trim();
    if (!/^[\x21-\x7e]{1,200}$/.test(clientId)) throw fail('BAD_REQUEST', 'clientId: 1-200 printable characters without spaces', { field: 'clientId' });
    const redirect = checkSmartUrl(input.redirectUri, 'redirectUri');
    if (!redirect.pathname.endsWith('/smart/callback')) {
      throw fail('BAD_REQUEST', 'redirectUri: must be this connector\'s /smart/callback URL', { field: 'redirectUri' });
    }
    const frameOrigins = [...new Set((input.frameOrigins?.length ? input.frameOrigins : [iss]).map((o) => checkSmartUrl(o, 'frameOrigins').origin))];
    return { name, iss, clientId, redirectUri: redirect.href, frameOrigins, autoProvision: input.autoProvision ?? false };
  }

  /** Registers an EHR, or replaces the registration of the same `iss` (and enables it again). */
  async register(input: SmartEhrInput, actor: Actor): Promise<SmartEhr> {
    const v = this.validate(input);
    const at = this.now();
    return this.deps.db.transaction(async (tx) => {
      const origins = JSON.stringify(v.frameOrigins);
      let [row] = await tx.query<Row>(q.insertEhr, [v.name, v.iss, v.clientId, v.redirectUri, origins, v.autoProvision, actor.name, at]);
      const created = Boolean(row);
      if (!row) [row] = await tx.query<Row>(q.updateEhr, [v.iss, v.name, v.clientId, v.redirectUri, origins, v.autoProvision]);
      await this.deps.audit.append(
        { actor: actor.name, role: actor.role, action: created ? 'smart.register' : 'smart.update', purpose: 'administration', entity: `smart-ehr/${String(row!.id)}`, at },
        tx,
      );
      return toEhr(row!);
    });
  }

  /**
   * Changes a registration by id: its name, client id, redirect URI, framing origins or auto-provisioning (the `iss` is
   * what the registration is, so it stays), and disables or enables it. A disabled EHR cannot launch the app, frames it
   * no more, and its open app sessions end (enabling it again does not bring them back). Each change is audited:
   * smart.update for the fields, smart.disable / smart.enable for the state. A change to nothing writes nothing.
   * Throws NOT_FOUND for an unknown id, BAD_REQUEST naming the field for bad input.
   */
  async update(id: string, changes: SmartEhrChanges, actor: Actor): Promise<SmartEhr> {
    const current = await this.byId(id);
    const v = this.validate({
      name: changes.name ?? current.name,
      iss: current.iss,
      clientId: changes.clientId ?? current.clientId,
      redirectUri: changes.redirectUri ?? current.redirectUri,
      frameOrigins: changes.frameOrigins ?? current.frameOrigins,
      autoProvision: changes.autoProvision ?? current.autoProvision,
    });
    const fieldsChanged =
      v.name !== current.name || v.clientId !== current.clientId || v.redirectUri !== current.redirectUri || v.autoProvision !== current.autoProvision ||
      JSON.stringify(v.frameOrigins) !== JSON.stringify(current.frameOrigins);
    const disabling = changes.disabled === true && !current.disabledAt;
    const enabling = changes.disabled === false && current.disabledAt !== null;
    if (!fieldsChanged && !disabling && !enabling) return current;
    const at = this.now();
    const disabledAt = disabling ? at : enabling ? null : current.disabledAt;
    return this.deps.db.transaction(async (tx) => {
      const [row] = await tx.query<Row>(q.updateEhrById, [current.id, v.name, v.clientId, v.redirectUri, JSON.stringify(v.frameOrigins), v.autoProvision, disabledAt]);
      if (!row) throw fail('NOT_FOUND', 'no such EHR registration', { field: 'ehr' });
      const entity = `smart-ehr/${current.id}`;
      if (fieldsChanged) await this.deps.audit.append({ actor: actor.name, role: actor.role, action: 'smart.update', purpose: 'administration', entity, at }, tx);
      if (disabling) {
        await tx.query(q.revokeEhrSessions, [current.id, at]);
        await this.deps.audit.append({ actor: actor.name, role: actor.role, action: 'smart.disable', purpose: 'administration', entity, at }, tx);
      }
      if (enabling) await this.deps.audit.append({ actor: actor.name, role: actor.role, action: 'smart.enable', purpose: 'administration', entity, at }, tx);
      return toEhr(row);
    });
  }

  async list(): Promise<SmartEhr[]> {
    return (await this.deps.db.query<Row>(q.listEhrs)).map(toEhr);
  }

  /** The enabled registration of an `iss`, or undefined. */
  async byIss(iss: string): Promise<SmartEhr | undefined> {
    let key: string;
    try {
      key = normaliseIss(iss);
    } catch {
      return undefined;
    }
    const [row] = await this.deps.db.query<Row>(q.ehrByIss, [key]);
    return row ? toEhr(row) : undefined;
  }

  async byId(id: string): Promise<SmartEhr> {
    const [row] = /^[1-9][0-9]{0,17}$/.test(id) ? await this.deps.db.query<Row>(q.ehrById, [id]) : [];
    if (!row) throw fail('NOT_FOUND', 'no such EHR registration', { field: 'ehr' });
    return toEhr(row);
  }

  /** An EHR by id or by iss (the CLI accepts either). */
  async find(idOrIss: string): Promise<SmartEhr> {
    if (/^[1-9][0-9]{0,17}$/.test(idOrIss)) return this.byId(idOrIss);
    const ehr = await this.byIss(idOrIss);
    if (!ehr) throw fail('NOT_FOUND', 'no enabled EHR registration has this iss', { field: 'ehr' });
    return ehr;
  }

  /** Every origin some enabled EHR may frame the app from. */
  async frameOrigins(): Promise<string[]> {
    const rows = await this.deps.db.query<{ frame_origins: unknown }>(q.frameOrigins);
    const all = rows.flatMap((r) => (typeof r.frame_origins === 'string' ? (JSON.parse(r.frame_origins) as string[]) : (r.frame_origins as string[])));
    return [...new Set(all)];
  }

  /** Links a Practitioner of an EHR to a clinician account (only clinicians approve). Ends the practitioner's open app sessions. */
  async link(ehrIdOrIss: string, practitioner: string, username: string, actor: Actor): Promise<PractitionerLink> {
    const ehr = await this.find(ehrIdOrIss);
    const ref = practitionerOf(practitioner.trim(), ehr.iss);
    if (!ref) throw fail('BAD_REQUEST', 'practitioner: expected Practitioner/<id>', { field: 'practitioner' });
    const user = await this.deps.users.byName(username);
    if (!user) throw fail('NOT_FOUND', 'no such user', { field: 'username' });
    if (user.role !== 'clinician') throw fail('BAD_REQUEST', `username: practitioners link to clinician accounts, not ${user.role}`, { field: 'username' });
    return this.writeLink(ehr, ref, user.id, false, actor);
  }

  async unlink(ehrIdOrIss: string, practitioner: string, actor: Actor): Promise<void> {
    const ehr = await this.find(ehrIdOrIss);
    const ref = practitionerOf(practitioner.trim(), ehr.iss);
    if (!ref) throw fail('BAD_REQUEST', 'practitioner: expected Practitioner/<id>', { field: 'practitioner' });
    const at = this.now();
    await this.deps.db.transaction(async (tx) => {
      const [row] = await tx.query(q.unlinkPractitioner, [ehr.id, ref]);
      if (!row) throw fail('NOT_FOUND', 'this practitioner is not linked', { field: 'practitioner' });
      await tx.query(q.revokePractitionerSessions, [ehr.id, ref, at]);
      await this.deps.audit.append({ actor: actor.name, role: actor.role, action: 'smart.unlink', purpose: 'administration', entity: `smart-ehr/${ehr.id}/${ref}`, at }, tx);
    });
  }

  async links(ehrIdOrIss: string): Promise<PractitionerLink[]> {
    const ehr = await this.find(ehrIdOrIss);
    return (await this.deps.db.query<Row>(q.listLinks, [ehr.id])).map((r) => ({
      ehrId: String(r.ehr_id),
      practitioner: r.practitioner as string,
      userId: String(r.user_id),
      username: r.username as string,
      role: r.role as string,
      provisioned: Boolean(r.provisioned),
      createdBy: r.created_by as string,
      createdAt: new Date(r.created_at as string | Date),
    }));
  }

  /**
   * The clinician account of a practitioner: the admin's link; else, on an EHR that allows it, a new clinician account
   * provisioned now (audited); else undefined (the practitioner may look but not approve).
   */
  async resolveClinician(ehr: SmartEhr, practitioner: string): Promise<string | undefined> {
    const [row] = await this.deps.db.query<{ user_id: string }>(q.linkedUser, [ehr.id, practitioner]);
    if (row) return String(row.user_id);
    if (!ehr.autoProvision) return undefined;
    const system = { name: `smart:ehr-${ehr.id}`, role: 'system' };
    const id = practitioner.slice('Practitioner/'.length).toLowerCase();
    const hashed = `ehr${ehr.id}.${createHash('sha256').update(practitioner).digest('hex').slice(0, 16)}`;
    const readable = `ehr${ehr.id}.${id}`;
    const name = /^[a-z0-9][a-z0-9._@-]{0,63}$/.test(readable) ? readable : hashed;
    let user = await this.deps.users.byName(name);
    if (user) {
      // A name taken by an account that is not this practitioner's: use the hashed name instead.
      user = name === hashed ? user : (await this.deps.users.byName(hashed)) ?? (await this.deps.users.add({ username: hashed, role: 'clinician' }, system)).user;
    } else {
      user = (await this.deps.users.add({ username: name, role: 'clinician' }, system)).user;
    }
    if (user.role !== 'clinician') return undefined;
    await this.writeLink(ehr, practitioner, user.id, true, system);
    return user.id;
  }

  private async writeLink(ehr: SmartEhr, practitioner: string, userId: string, provisioned: boolean, actor: Actor): Promise<PractitionerLink> {
    const at = this.now();
    await this.deps.db.transaction(async (tx) => {
      await tx.query(q.linkPractitioner, [ehr.id, practitioner, userId, provisioned, actor.name, at]);
      // Sessions opened while the practitioner was linked elsewhere (or to nobody) end: the next launch picks the new link up.
      await tx.query(q.revokePractitionerSessions, [ehr.id, practitioner, at]);
      await this.deps.audit.append(
        { actor: actor.name, role: actor.role, action: provisioned ? 'smart.provision' : 'smart.link', purpose: 'administration', entity: `smart-ehr/${ehr.id}/${practitioner}`, at },
        tx,
      );
    });
    return (await this.links(ehr.id)).find((l) => l.practitioner === practitioner)!;
  }
}
