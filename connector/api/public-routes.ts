// The public pages `outreach serve` answers outside /api/v1: the escrow portal (code, date of birth, message), RFC 8058 one-click unsubscribe, open and click tracking.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { reveal } from '../../fhir/phi.js';
import type { App } from '../app.js';
import { isChannel, isPurpose } from '../consent/purposes.js';
import { createTracking, type Tracking } from '../delivery/tracking.js';
import { createUnsubscribe, type Unsubscribe } from '../delivery/unsubscribe.js';
import { asOutreachError } from '../errors.js';
import type { EscrowPortal } from '../portal/escrow-portal.js';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const portalToken = /^[A-Za-z0-9_-]{43}$/;

/** An HTML page for a person (the API's own CSP forbids styles and forms; these pages need both, from themselves only). */
function page(reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  return reply
    .code(status)
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
    .type('text/html; charset=utf-8')
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escape(title)}</title>` +
        `<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}pre{white-space:pre-wrap}</style>` +
        `</head><body><h1>${escape(title)}</h1>${body}</body></html>`,
    );
}

/** RFC 8058 allows the one-click POST as urlencoded or multipart form data: both become `List-Unsubscribe=One-Click`. */
function oneClickBody(body: string, contentType: string): string {
  if (!contentType.startsWith('multipart/form-data')) return body;
  const m = /name="List-Unsubscribe"\r?\n\r?\n([^\r\n]*)/.exec(body);
  return m ? `List-Unsubscribe=${encodeURIComponent(m[1]!)}` : '';
}

export interface PublicRoutes {
  /** Registers the pages on the server (in their own scope: only they parse form bodies). */
  register(server: FastifyInstance): Promise<void>;
}

/**
 * The pages need the send pipeline (its escrow desk and unsubscribe tokens), which is opened on first use. Without
 * OUTREACH_PUBLIC_URL no link to them is ever sent, and the portal answers 503.
 */
export function publicRoutes(app: App): PublicRoutes {
  const tracking: Tracking = createTracking({ db: app.db, cipher: app.cipher, publicUrl: app.config.publicUrl ?? 'http://127.0.0.1' });
  let parts: Promise<{ escrow: EscrowPortal | undefined; unsubscribe: Unsubscribe }> | undefined;
  const open = () => {
    parts ??= app.sending().then((sending) => ({
      escrow: sending.escrow,
      unsubscribe: createUnsubscribe({
        tokens: sending.unsubscribeTokens,
        outbox: sending.outbox,
        publicUrl: app.config.publicUrl ?? 'http://127.0.0.1',
        recordOptOut: async (claim, token) => {
          const actor = { name: 'unsubscribe', role: 'system' };
          const change = {
            patientId: claim.patientId,
            channel: isChannel(claim.channel) ? claim.channel : ('email' as const),
            source: 'unsubscribe-link' as const,
            // The token's hash names the link without making it usable again.
            sourceRef: `unsubscribe/${createHash('sha256').update(token).digest('hex').slice(0, 32)}`,
          };
          // One click is one opt-out: a repeated POST of the same link records nothing new.
          const current = await app.consent.current(claim.patientId);
          const purpose = isPurpose(claim.purpose) ? claim.purpose : undefined;
          const row = current.find((r) => r.channel === change.channel && r.purpose === (purpose ?? '*'));
          if (row?.status === 'revoked' && row.sourceRef === change.sourceRef) return;
          if (purpose) await app.consent.revoke({ ...change, purpose }, actor);
          else await app.consent.optOut(change, actor);
        },
      }),
    }));
    parts.catch(() => (parts = undefined));
    return parts;
  };

  return {
    async register(server) {
      await server.register(async (scope) => {
        scope.addContentTypeParser(['application/x-www-form-urlencoded', 'multipart/form-data'], { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) =>
          done(null, body),
        );

        const codeForm = (token: string) =>
          `<form method="post" action="/m/${token}/verify"><p><label>One-time code <input name="code" inputmode="numeric" autocomplete="one-time-code" required></label></p>` +
          `<p><label>Date of birth <input name="birthDate" type="date" required></label></p><p><button>Open the message</button></p></form>`;
        const portal = async (token: string, reply: FastifyReply, step: () => Promise<FastifyReply>): Promise<FastifyReply> => {
          if (!portalToken.test(token)) return page(reply, 404, 'Secure message', '<p>This link is not valid.</p>');
          const { escrow } = await open();
          if (!escrow) return page(reply, 503, 'Secure message', '<p>The secure message portal is not configured.</p>');
          try {
            return await step();
          } catch (err) {
            const e = asOutreachError(err);
            return page(reply, e.status, 'Secure message', `<p>${escape(e.message)}</p>${e.code === 'PORTAL_VERIFICATION_FAILED' ? codeForm(token) : ''}`);
          }
        };

        scope.get<{ Params: { token: string } }>('/m/:token', { config: { routeName: 'portal' } }, (request, reply) =>
          portal(request.params.token, reply, async () => {
            const { escrow } = await open();
            const link = await escrow!.open(request.params.token);
            if (link.locked) return page(reply, 423, 'Secure message', '<p>Too many failed attempts: this link is locked for a while.</p>');
            return page(
              reply,
              200,
              'Secure message',
              `<p>A message is waiting for you. It opens after two checks: a one-time code sent to the same email address, and your date of birth.</p>` +
                `<form method="post" action="/m/${request.params.token}/code"><button>Email me a one-time code</button></form>` +
                `<p>The link works until ${escape(link.expiresAt.toISOString().slice(0, 10))}.</p>`,
            );
          }),
        );
        scope.post<{ Params: { token: string } }>('/m/:token/code', { config: { routeName: 'portal' } }, (request, reply) =>
          portal(request.params.token, reply, async () => {
            await (await open()).escrow!.sendCode(request.params.token);
            return page(reply, 200, 'Secure message', `<p>A one-time code is on its way to your email address.</p>${codeForm(request.params.token)}`);
          }),
        );
        scope.post<{ Params: { token: string }; Body: string }>('/m/:token/verify', { config: { routeName: 'portal' } }, (request, reply) =>
          portal(request.params.token, reply, async () => {
            const form = new URLSearchParams(typeof request.body === 'string' ? request.body : '');
            const escrow = (await open()).escrow!;
            const { session } = await escrow.verify(request.params.token, form.get('code') ?? '', form.get('birthDate') ?? '');
            const content = reveal(await escrow.read(request.params.token, session));
            return page(reply, 200, content.subject, `<pre>${escape(content.text)}</pre>`);
          }),
        );

        // Tracking answers a machine: no page, just the pixel or the redirect (unknown tokens get a bare 404).
        scope.get<{ Params: { token: string } }>('/t/o/:token', { config: { routeName: 'tracking' } }, async (request, reply) => {
          try {
            const r = await tracking.handleOpen(request.params.token, { userAgent: request.headers['user-agent'] ?? '', ip: request.ip, method: request.method });
            return reply.code(r.status).type(r.contentType).send(r.body);
          } catch (err) {
            return reply.code(asOutreachError(err).status).type('text/plain; charset=utf-8').send('not found');
          }
        });
        scope.get<{ Params: { token: string } }>('/t/c/:token', { config: { routeName: 'tracking' } }, async (request, reply) => {
          try {
            const r = await tracking.handleClick(request.params.token, { userAgent: request.headers['user-agent'] ?? '', ip: request.ip, method: request.method });
            return reply.code(r.status).header('location', r.location).send();
          } catch (err) {
            return page(reply, asOutreachError(err).status, 'Link', '<p>This link is not valid.</p>');
          }
        });

        scope.get<{ Params: { token: string } }>('/u/:token', { config: { routeName: 'unsubscribe' } }, async (request, reply) => {
          try {
            // A GET (a person, or a scanner prefetching the link) only shows the button: it never unsubscribes.
            (await open()).unsubscribe.handleGet(request.params.token);
            return page(
              reply,
              200,
              'Unsubscribe',
              `<form method="post" action="/u/${escape(request.params.token)}"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button>Unsubscribe from these emails</button></form>`,
            );
          } catch (err) {
            const e = asOutreachError(err);
            return page(reply, e.status, 'Unsubscribe', `<p>${escape(e.message)}</p>`);
          }
        });
        scope.post<{ Params: { token: string }; Body: string }>('/u/:token', { config: { routeName: 'unsubscribe' } }, async (request, reply) => {
          try {
            const body = oneClickBody(typeof request.body === 'string' ? request.body : '', String(request.headers['content-type'] ?? ''));
            const result = await (await open()).unsubscribe.handlePost(request.params.token, body);
            return page(reply, result.status, 'Unsubscribed', '<p>You will not get these emails any more.</p>');
          } catch (err) {
            const e = asOutreachError(err);
            return page(reply, e.status, 'Unsubscribe', `<p>${escape(e.message)}</p>`);
          }
        });
      });
    },
  };
}
