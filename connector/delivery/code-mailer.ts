// Sends the escrow portal's one-time code: a short PHI-free email to the address the notice went to, over verified TLS where the recipient's MX allows it.
import { randomUUID } from 'node:crypto';
import { fail } from '../errors.js';
import { reveal, type Phi } from '../../fhir/phi.js';
import type { DkimSigner } from './dkim.js';
import { bareAddress } from './dispatcher.js';
import { buildWireMessage } from './mime.js';
import { domainOf } from './mx-resolver.js';
import type { Router } from './route.js';
import type { Transport } from './transport.js';

export interface CodeMailerOptions {
  router: Router;
  transport: Transport;
  /** From address and the organisation name shown. */
  from: string;
  senderName: string;
  /** Message-ID domain. */
  domain: string;
  dkim?: DkimSigner;
}

/**
 * The code is a credential, not PHI: it goes over verified TLS when any MX offers it, otherwise over the
 * same opportunistic route the notice took (the date-of-birth check is the factor that does not travel by
 * mail). Where the recipient requires TLS and none verifies, nothing is sent.
 */
export function createCodeMailer(options: CodeMailerOptions): (address: Phi<string>, code: string) => Promise<void> {
  return async (address, code) => {
    const to = reveal(address);
    const domain = domainOf(to);
    const route = await options.router.assess(domain);
    const candidate = route.verified ?? route.opportunistic;
    if (!candidate) throw fail('TLS_REQUIRED_UNAVAILABLE', 'no route to send the code');
    const raw = await buildWireMessage(
      {
        from: options.from, to, subject: `Your ${options.senderName} code`,
        text: `Your one-time code is ${code}. It works for 10 minutes. If you did not ask for it, ignore this email.`, phiFree: true,
      },
      { messageId: `<${randomUUID()}@${options.domain}>` },
      options.dkim,
    );
    const outcome = await options.transport.send({
      domain, candidate, tls: route.verified ? 'verified' : 'opportunistic', envelope: { from: bareAddress(options.from), to }, raw,
    });
    if (outcome.status !== 'delivered') throw fail('SMTP_REJECTED', `the code email was not accepted (${outcome.code ?? 'no reply'})`);
  };
}
