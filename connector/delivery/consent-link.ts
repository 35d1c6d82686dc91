// Ties delivery to the consent registry: the dispatch-time gate, and a listener that cancels queued mail the moment an authorization is revoked or a channel opted out.
import type { AuthorizationDecision } from '../consent/gate.js';
import type { ConsentRegistry } from '../consent/registry.js';
import { isPurpose, type Purpose } from '../consent/purposes.js';
import type { ConsentGate, ConsentGateMany } from './dispatcher.js';
import type { Outbox } from './outbox.js';

type Registry = Pick<ConsentRegistry, 'isAllowed' | 'onConsentChanged'>;

const validPatientId = (id: string) => /^[1-9][0-9]{0,18}$/.test(id);
const unknownPurpose = (purpose: string, channel: string) => ({ allowed: false, reason: `unknown purpose or channel: ${purpose}/${channel}`, version: null });

/** The dispatcher's gate over the registry: an unknown purpose or channel is a denial, never a pass. */
export function consentGate(registry: Pick<ConsentRegistry, 'isAllowed'>): ConsentGate {
  return async (patientId, purpose, channel, at) => {
    if (!isPurpose(purpose) || channel !== 'email') return unknownPurpose(purpose, channel);
    const d = await registry.isAllowed(patientId, purpose, 'email', at);
    return { allowed: d.allowed, reason: d.reason, version: d.consentVersion };
  };
}

/** The same gate for a chunk of messages: one registry look-up per purpose in the chunk. */
export function consentGateMany(registry: Pick<ConsentRegistry, 'isAllowedMany'>): ConsentGateMany {
  return async (requests, at) => {
    const byPurpose = new Map<Purpose, string[]>();
    for (const r of requests) {
      if (!isPurpose(r.purpose) || r.channel !== 'email' || !validPatientId(r.patientId)) continue;
      const ids = byPurpose.get(r.purpose);
      if (ids) ids.push(r.patientId);
      else byPurpose.set(r.purpose, [r.patientId]);
    }
    const answers = new Map<string, Map<string, AuthorizationDecision>>();
    for (const [purpose, ids] of byPurpose) answers.set(purpose, await registry.isAllowedMany(ids, purpose, 'email', at));
    return requests.map((r) => {
      if (!isPurpose(r.purpose) || r.channel !== 'email') return unknownPurpose(r.purpose, r.channel);
      const d = answers.get(r.purpose)?.get(String(r.patientId));
      if (!d) return { allowed: false, reason: 'malformed patient id', version: null };
      return { allowed: d.allowed, reason: d.reason, version: d.consentVersion };
    });
  };
}

/**
 * Cancels queued and held messages as soon as a revocation commits: a purpose revocation stops that
 * purpose, a channel-wide opt-out ('*') stops everything on the channel. The gate at dispatch still
 * catches anything already claimed. Returns the unsubscribe function.
 */
export function cancelOnRevocation(registry: Registry, outbox: Outbox): () => void {
  return registry.onConsentChanged(async (changes) => {
    for (const c of changes) {
      if (c.status === 'active') continue;
      const filter = c.purpose === '*' ? { patientId: c.patientId, channel: c.channel } : { patientId: c.patientId, purpose: c.purpose, channel: c.channel };
      await outbox.cancelQueued(filter, `consent: ${c.purpose === '*' ? 'channel opted out' : `${c.purpose} ${c.status}`}`);
    }
  });
}
