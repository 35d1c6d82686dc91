// The send pipeline's options for a delivery test world: its DNS, its loopback MX table and CA, clinic.test's DKIM key, short retries.
import { createDkimSigner } from '../../../connector/delivery/dkim.js';
import { createDnsLookup } from '../../../connector/delivery/dns-client.js';
import { tableConnectTarget } from '../../../connector/delivery/mx-resolver.js';
import type { SendingOptions } from '../../../connector/sending/sending-service.js';
import { testDkimKey } from '../../support/test-ca.js';
import type { DeliveryWorld } from './world.js';

/** Mail from care@clinic.test (signed s1._domainkey.clinic.test) routed to the world's sinks; the caller adds its worker id. */
export function worldSendingOptions(delivery: DeliveryWorld) {
  return {
    sender: { address: 'care@clinic.test', displayName: 'Riverside Outreach' },
    dns: createDnsLookup([delivery.dns.address]),
    connectTarget: tableConnectTarget(delivery.connectTable),
    ca: [delivery.ca.cert],
    dkim: createDkimSigner({ domainName: 'clinic.test', keySelector: 's1', privateKey: testDkimKey().privateKey }),
    retryDelaysMs: [1000],
    timeoutMs: 5000,
  } satisfies Partial<SendingOptions>;
}
