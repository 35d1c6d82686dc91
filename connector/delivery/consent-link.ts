// Ties delivery to the consent registry: the dispatch-time gate, and a listener that cancels queued mail the moment an authorization is revoked or a channel opted out.
import type { ConsentRegistry } from '../consent/registry.js';
import { isPurpose } from '../consent/purposes.js';
import type { ConsentGate } from './dispatcher.js';
import type { Outbox } from './outbox.js';

type Registry = Pick<ConsentRegistry, 'isAllowed' | 'onConsentChanged'>;

/** The dispatcher's gate over the registry: an unknown purpose or channel is a denial, never a pass. */
export function consentGate(registry: Pick<ConsentRegistry, 'isAllowed'>): ConsentGate {
  return async (patientId, purpose, channel, at) => {
    if (!isPurpose(purpose) || channel !== 'email') return { allowed: false, reason: `unknown purpose or channel: ${purpose}/${channel}`, version: null };
    const d = await registry.isAllowed(patientId, purpose, 'email', at);
    return { allowed: d.allowed, reason: d.reason, version: d.consentVersion };
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
