// The demo's web pages on loopback: the demo inbox (what each receiving mailbox got) and the escrow portal pages (one-time code, date of birth, then the message).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { asOutreachError } from '../errors.js';
import type { EscrowPortal } from '../portal/escrow-portal.js';
import { reveal } from '../../fhir/phi.js';
import type { DemoMailbox } from './demo-world.js';

export interface DemoWeb {
  url: string;
  /** Set once the send pipeline exists (the portal needs the store and the mail route). */
  setPortal(portal: EscrowPortal | undefined): void;
  close(): Promise<void>;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const tokenPattern = /^\/m\/([A-Za-z0-9_-]{43})(\/code|\/verify)?$/;

function page(res: ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
  });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}pre{white-space:pre-wrap;background:#f6f6f6;padding:1rem}.tls{color:#060}.plain{color:#a50}</style>
</head><body><h1>${escape(title)}</h1>${body}</body></html>`);
}

async function form(req: IncomingMessage): Promise<URLSearchParams> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 8192) throw new Error('form too large');
    chunks.push(c as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function headerOf(raw: string, name: string): string {
  const head = raw.split(/\r?\n\r?\n/, 1)[0] ?? '';
  const m = new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im').exec(head);
  return m ? m[1]!.replace(/\r?\n[ \t]+/g, ' ') : '';
}

export async function startDemoWeb(mailboxes: readonly DemoMailbox[]): Promise<DemoWeb> {
  let portal: EscrowPortal | undefined;

  const inbox = (res: ServerResponse) => {
    const sections = mailboxes.map((m, b) => {
      const rows = m.sink.messages
        .map((msg, i) => {
          const raw = msg.raw.toString('utf8');
          return `<tr><td>${i + 1}</td><td>${escape(msg.to.join(', '))}</td><td><a href="/inbox/${b}/${i}">${escape(headerOf(raw, 'Subject') || '(no subject)')}</a></td><td class="${msg.secure ? 'tls' : 'plain'}">${msg.secure ? `TLS ${escape(msg.tls?.version ?? '')}` : 'no TLS'}</td></tr>`;
        })
        .join('');
      return `<h2>${escape(m.domain)} <small>(MX ${escape(m.mx)}, ${m.tls ? 'STARTTLS with a demo-CA certificate' : 'no STARTTLS'})</small></h2>
<p>${m.sink.messages.length} message(s)</p><table><tr><th>#</th><th>to</th><th>subject</th><th>transport</th></tr>${rows}</table>`;
    });
    page(res, 200, 'Demo inbox', sections.join(''));
  };

  const message = (res: ServerResponse, box: number, index: number) => {
    const msg = mailboxes[box]?.sink.messages[index];
    if (!msg) return page(res, 404, 'No such message', '<p><a href="/">Back to the inbox</a></p>');
    page(res, 200, `Message ${index + 1} to ${mailboxes[box]!.domain}`, `<p>${msg.secure ? 'Received inside TLS.' : 'Received in plaintext (no TLS).'} <a href="/">Back</a></p><pre>${escape(msg.raw.toString('utf8'))}</pre>`);
  };

  const portalPage = async (req: IncomingMessage, res: ServerResponse, token: string, step: string | undefined) => {
    if (!portal) return page(res, 503, 'Portal not ready', '<p>The send pipeline is starting.</p>');
    const codeForm = `<form method="post" action="/m/${token}/verify"><p><label>One-time code <input name="code" inputmode="numeric" autocomplete="one-time-code" required></label></p>
<p><label>Date of birth <input name="birthDate" type="date" required></label></p><p><button>Open the message</button></p></form>`;
    try {
      if (req.method === 'GET' && !step) {
        const link = await portal.open(token);
        if (link.locked) return page(res, 423, 'Secure message', '<p>Too many failed attempts: this link is locked for a while.</p>');
        return page(res, 200, 'Secure message', `<p>A message is waiting for you. It opens after two checks: a one-time code sent to the same email address, and your date of birth.</p>
<form method="post" action="/m/${token}/code"><button>Email me a one-time code</button></form><p>The link works until ${escape(link.expiresAt.toISOString().slice(0, 10))}.</p>`);
      }
      if (req.method === 'POST' && step === '/code') {
        await portal.sendCode(token);
        return page(res, 200, 'Secure message', `<p>A one-time code is on its way to your email address.</p>${codeForm}`);
      }
      if (req.method === 'POST' && step === '/verify') {
        const f = await form(req);
        const { session } = await portal.verify(token, f.get('code') ?? '', f.get('birthDate') ?? '');
        const content = reveal(await portal.read(token, session));
        return page(res, 200, content.subject, `<pre>${escape(content.text)}</pre>`);
      }
      page(res, 405, 'Not allowed', '');
    } catch (err) {
      const e = asOutreachError(err);
      page(res, e.status, 'Secure message', `<p>${escape(e.message)}</p>${step === '/verify' && e.code === 'PORTAL_VERIFICATION_FAILED' ? codeForm : ''}`);
    }
  };

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const portalMatch = tokenPattern.exec(path);
    const messageMatch = /^\/inbox\/(\d{1,3})\/(\d{1,6})$/.exec(path);
    if (portalMatch) return void portalPage(req, res, portalMatch[1]!, portalMatch[2]).catch(() => res.destroy());
    if (req.method !== 'GET') return page(res, 405, 'Not allowed', '');
    if (path === '/' || path === '/inbox') return inbox(res);
    if (messageMatch) return message(res, Number(messageMatch[1]), Number(messageMatch[2]));
    page(res, 404, 'Not found', '<p><a href="/">The demo inbox</a></p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setPortal: (p) => void (portal = p),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
