// Sender addresses (admin): From addresses on domains whose DKIM key is published, so receivers can verify what we sign.
import type { AuditLog } from '../audit/audit-log.js';
import type { DnsLookup } from '../delivery/dns-client.js';
import { fail } from '../errors.js';
import { loadQueries, type Db } from '../store/db.js';

const q = loadQueries(new URL('./queries.sql', import.meta.url), ['insertSender', 'listSenders', 'senderById', 'deleteSender', 'unverifiedSenders', 'markSenderVerified'] as const);

export interface Sender {
  id: string;
  address: string;
  displayName: string;
  dkimSelector?: string;
  /** The domain published a DKIM key under the selector when the sender was added. */
  verified: boolean;
}

interface SenderRow {
  id: string;
  address: string;
  display_name: string;
  dkim_selector: string | null;
  verified_at: Date | null;
}

const toSender = (r: SenderRow): Sender => ({
  id: String(r.id),
  address: r.address,
  displayName: r.display_name,
  ...(r.dkim_selector ? { dkimSelector: r.dkim_selector } : {}),
  verified: r.verified_at !== null,
});

const selectorPattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const domainPattern = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

/** True when a TXT record is a DKIM key record with a non-empty public key (`p=` empty means revoked, RFC 6376 3.6.1). */
export function isDkimKeyRecord(txt: string): boolean {
  const tags = new Map(
    txt
      .split(';')
      .map((t) => t.trim())
      .filter(Boolean)
      .map((t) => [t.slice(0, t.indexOf('=')).trim(), t.slice(t.indexOf('=') + 1).replace(/\s+/g, '')] as const),
  );
  const version = tags.get('v');
  return (version === undefined || version === 'DKIM1') && /^[A-Za-z0-9+/]+=*$/.test(tags.get('p') ?? '');
}

export class SenderDirectory {
  constructor(
    private readonly deps: { db: Db; audit: AuditLog; dns: DnsLookup; clock?: () => Date },
  ) {}

  async list(): Promise<Sender[]> {
    return (await this.deps.db.query<SenderRow>(q.listSenders)).map(toSender);
  }

  async get(id: string): Promise<Sender | undefined> {
    if (!/^[1-9][0-9]{0,17}$/.test(id)) return undefined;
    const [row] = await this.deps.db.query<SenderRow>(q.senderById, [id]);
    return row ? toSender(row) : undefined;
  }

  /** Adds a sender; it is verified when `<selector>._domainkey.<domain>` holds a DKIM key. CONFLICT when the address exists. */
  async add(input: { address: string; displayName?: string; dkimSelector?: string }, actor: { name: string; role: string }): Promise<Sender> {
    const address = input.address.trim().toLowerCase();
    const at = address.lastIndexOf('@');
    const domain = address.slice(at + 1);
    if (at < 1 || !domainPattern.test(domain)) throw fail('BAD_REQUEST', 'the sender address needs a valid domain', { field: 'address' });
    const displayName = (input.displayName ?? '').trim();
    if (/[\r\n"<>]/.test(displayName)) throw fail('BAD_REQUEST', 'a display name may not hold line breaks, quotes or angle brackets', { field: 'displayName' });
    const selector = input.dkimSelector?.trim().toLowerCase();
    if (selector !== undefined && !selectorPattern.test(selector)) throw fail('BAD_REQUEST', 'a DKIM selector is a DNS label', { field: 'dkimSelector' });
    const verified = selector ? await this.dkimPublished(selector, domain) : false;
    const [row] = await this.deps.db.query<SenderRow>(q.insertSender, [
      address,
      domain,
      displayName,
      selector ?? null,
      verified ? (this.deps.clock ?? (() => new Date()))() : null,
      actor.name,
    ]);
    if (!row) throw fail('CONFLICT', 'that sender address exists', { field: 'address' });
    await this.deps.audit.append({ actor: actor.name, role: actor.role, action: 'sender.create', purpose: 'administration', entity: `sender/${row.id}` });
    return toSender(row);
  }

  /**
   * Checks the DNS again for senders not verified yet (the key is often published after the sender is added);
   * returns how many became verified.
   */
  async recheck(): Promise<number> {
    const pending = (await this.deps.db.query<SenderRow & { domain: string }>(q.unverifiedSenders)).filter((r) => r.dkim_selector);
    const found = await Promise.all(pending.map((r) => this.dkimPublished(r.dkim_selector!, r.domain)));
    const now = (this.deps.clock ?? (() => new Date()))();
    let verified = 0;
    for (let i = 0; i < pending.length; i++) {
      if (!found[i]) continue;
      await this.deps.db.query(q.markSenderVerified, [pending[i]!.id, now]);
      verified++;
    }
    return verified;
  }

  async remove(id: string, actor: { name: string; role: string }): Promise<void> {
    const [row] = /^[1-9][0-9]{0,17}$/.test(id) ? await this.deps.db.query<{ id: string }>(q.deleteSender, [id]) : [];
    if (!row) throw fail('NOT_FOUND', 'no such sender', { field: 'id' });
    await this.deps.audit.append({ actor: actor.name, role: actor.role, action: 'sender.delete', purpose: 'administration', entity: `sender/${row.id}` });
  }

  private async dkimPublished(selector: string, domain: string): Promise<boolean> {
    try {
      return (await this.deps.dns.txt(`${selector}._domainkey.${domain}`)).some(isDkimKeyRecord);
    } catch {
      // An unreachable resolver leaves the sender unverified; adding it is still allowed.
      return false;
    }
  }
}
